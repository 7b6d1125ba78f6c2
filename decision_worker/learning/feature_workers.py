"""The replay's feature rows built by several processes, for the cores training has.

Building rows is most of the replay's time, and a moment's rows depend only on that moment
(feature_batch.py): the profile as it was, the counts of the last reload. So each worker
replays every event itself (the profiles, the reloads) and builds the rows of every
`workers`-th moment only; the forked workers send theirs back through a pipe and the first
fills them in. Every worker takes the same decisions in the same order, so they agree on
which moment is whose, and the rows are the same bits as one process builds (the reloads
happen at the same moments, whoever builds the rows: test_feature_workers.py).

Forked, not spawned: the workers start from the parsed events as they are (gc-frozen, so
shared copy-on-write) instead of pickling a million of them.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from decision_worker.errors import ModelError

Share = tuple[int, int]  # (this worker, workers)


class Filled(Protocol):
    def filled(self) -> dict[int, Any]:
        """What this worker built, by group."""

    def fill(self, built: dict[int, Any]) -> None:
        """Take in what another worker built."""


F = TypeVar("F", bound=Filled)


def available_workers(most: int = 2, forked: bool = True) -> int:
    """The cores this process may run on, at most `most` (fork where there is one). For
    forked workers, one while other threads run (the demo trains beside its servers): a
    fork copies whatever lock another thread holds at that moment, and the child could wait
    on it for ever."""
    if forked and (not hasattr(os, "fork") or threading.active_count() > 1):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(most, cores or 1))


def shared(run: Callable[[Share], F], workers: int) -> F:
    """`run(share)` in `workers` processes (this one first), the others' rows filled into
    this one's result."""
    if workers <= 1:
        return run((0, 1))
    children = [_fork(run, (w, workers)) for w in range(1, workers)]
    try:
        out = run((0, workers))
    finally:
        results = [_collect(pid, read) for pid, read in children]
    for built in results:
        out.fill(built)
    return out


def _fork(run: Callable[[Share], F], share: Share) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        os.close(read)
        status = 0
        try:
            payload: tuple[bool, Any] = (True, run(share).filled())
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            payload, status = (False, traceback.format_exc()), 1
        try:
            with os.fdopen(write, "wb") as pipe:
                pickle.dump(payload, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def _collect(pid: int, read: int) -> dict[int, Any]:
    try:
        with os.fdopen(read, "rb") as pipe:
            ok, payload = pickle.load(pipe)
    except EOFError:
        ok, payload = False, "it sent nothing"
    finally:
        os.waitpid(pid, 0)
    if not ok:
        raise ModelError(f"a feature worker failed: {payload}")
    built: dict[int, Any] = payload
    return built
