"""Training's rows built by two processes (feature_workers.py), each for its own persons
(persons.py) where no placement needs retrieval and by turns where one does, are the rows
one process builds, bit for bit, and a worker that fails is an error, never missing rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from decision_worker.errors import ModelError
from decision_worker.learning.examples import build_examples
from decision_worker.learning.feature_workers import Share, shared
from decision_worker.learning.persons import Persons
from decision_worker.learning.replay import parse_log
from decision_worker.learning.synthetic import Population, as_logged

from .test_learning import END, shop_catalog


def _anonymous_first(messages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every third user's first messages under an anonymous id, then one tying it to the
    user id (the replay merges the two profiles): a person of two ids."""
    sent: dict[str, int] = {}
    for message in messages:
        user = message["userId"]
        n = sent[user] = sent.get(user, 0) + 1
        if int(user.rsplit("-", 1)[1]) % 3 == 0 and n <= 12:
            message = {**message, "anonymousId": f"anon-{user}"}
            if n < 12:
                del message["userId"]
        yield message


@pytest.mark.parametrize(("sessions", "rank_limit"), [(False, 500), (True, 500), (True, 4)])
def test_two_workers_build_the_examples_one_process_builds(settings, sessions: bool,
                                                           rank_limit: int) -> None:
    """rank_limit 4: retrieval narrows every placement, reading the profile's counters, so
    the groups of a session start depend on them: the workers share the moments by turns and
    keep every profile whole."""
    catalog = shop_catalog()
    events, _ = parse_log(as_logged(_anonymous_first(Population(catalog, 150, seed=11).history(
        12, END, dt.timedelta(days=3), identify=True, sessions=sessions))))
    assert sum(e.anonymous_id is not None and e.user_id is not None for e in events) == 50
    persons = Persons(events, 2)
    assert {persons.owner(e.user_id or "") for e in events if e.user_id} == {0, 1}
    assert len({persons.owner(f"{who}synthetic-00003") for who in ("", "anon-")}) == 1
    times = np.array([e.timestamp.timestamp() for e in events])
    cut = float(np.quantile(times, 0.6))
    built = [build_examples(events, catalog, settings.lateness_s, keep_candidates=True,
                            keep_candidates_since=cut, clickless_from=cut,
                            rank_limit=rank_limit, workers=workers)
             for workers in (1, 2)]
    one, two = built
    assert one.groups > 300 and one.left_out > 0 and sum(c is not None for c in one.candidates)
    assert ("session" in one.group_kind) == sessions
    assert one.x.tobytes() == two.x.tobytes()
    for name in ("label", "position", "group_time", "group_history"):
        assert getattr(one, name).tobytes() == getattr(two, name).tobytes(), name
    assert (one.group_sizes, one.variant, one.group_kind, one.group_user, one.left_out) == (
        two.group_sizes, two.variant, two.group_kind, two.group_user, two.left_out)
    for mine, theirs in zip(one.candidates, two.candidates, strict=True):
        assert (mine is None) == (theirs is None)
        if mine is not None and theirs is not None:
            assert mine[0].tobytes() == theirs[0].tobytes() and mine[1] == theirs[1]


class _Rows:
    def __init__(self, share: Share) -> None:
        self.rows = {share[0]: f"built by {share[0]}"}

    def filled(self) -> dict[int, Any]:
        return self.rows

    def fill(self, built: dict[int, Any]) -> None:
        self.rows.update(built)


def test_each_worker_fills_in_its_share() -> None:
    assert shared(_Rows, 3).rows == {0: "built by 0", 1: "built by 1", 2: "built by 2"}


def test_a_failing_worker_is_an_error() -> None:
    def run(share: Share) -> _Rows:
        if share[0] == 1:
            raise ValueError("worker 1 broke")
        return _Rows(share)

    with pytest.raises(ModelError, match="worker 1 broke"):
        shared(run, 2)


def test_no_forked_workers_while_other_threads_run() -> None:
    import threading

    from decision_worker.learning.feature_workers import available_workers

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert available_workers(2) == 1
        assert available_workers(2, forked=False) >= 1
    finally:
        release.set()
        other.join()
