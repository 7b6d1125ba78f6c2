"""Training's heap and the cyclic garbage collector.

Training holds millions of objects for its whole run (the log's messages and their events:
3.2 million tracked objects for a million impressions), and every full collection walks
all of them (1.6 s each); the replay's allocations triggered enough of them to take a
quarter of the run. None of these objects are in reference cycles, so they are read with
the collector paused and then set aside (`gc.freeze`) until training returns, and full
collections are made rare meanwhile; young collections still run, for the few cycles
training makes (each popularity snapshot is one).

A process that exits once training returns (`edgepick train`) need not free them at all:
freeing them one by one took 1.9 s after the work was done (py-spy, 1M impressions). It
says so (`exit_soon`), training keeps what it read (`keep`), and it leaves with `exit_now`,
as mypy does.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, ParamSpec, TypeVar

# Young collections every 10,000 allocations (not 700), full ones after 1,000 of the
# middle generation's (not 10): the replay's copies of profiles die young.
THRESHOLDS = (10_000, 50, 1_000)
P = ParamSpec("P")
R = TypeVar("R")
_KEPT: list[object] = []  # never freed: the process exits first (exit_soon)
_exiting = False


def exit_soon() -> None:
    """This process exits once training returns (`exit_now`): what it read is kept."""
    global _exiting  # noqa: PLW0603 - one flag for the process
    _exiting = True


def keep(*objects: object) -> None:
    """Never free `objects` when the process exits next; else nothing."""
    if _exiting:
        _KEPT.extend(objects)


def exit_now(code: int = 0) -> NoReturn:
    """Leave without freeing the heap (output flushed first)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def long_lived() -> Iterator[None]:
    """What the block reads is read with no collection, then set aside until the function
    running it (decorated with `restores_collector`) returns."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
        if enabled:
            gc.enable()


def restores_collector(function: Callable[P, R]) -> Callable[P, R]:
    """The collector as it was before `function` ran, once it returns (its locals, which
    held what it set aside, released by then)."""
    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        thresholds = gc.get_threshold()
        try:
            return function(*args, **kwargs)
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
    return run
