"""Feature rows of many replayed moments, built together.

The replay reaches a slate (or a session start) at one moment of event time and needs the
worker's rows for a few of the placement's variants as of that moment. Built one moment at
a time (`Replay.features`), each cost about a hundred numpy calls on arrays of a few rows:
most of the time training took. Here a moment is recorded with what its rows depend on,
frozen then: a copy of the profile (its counters change in place as later events are
applied) and the placement's popularity snapshot with its trend features resolved
(`Replay.snapshot`). The moments of one placement then go through `user_batch` and
`placement_matrix` together, as the worker scores a batch of users, each moment with its
own snapshot.

A variant's row does not depend on which other variants are built beside it (the skew test
checks a subset against the whole placement), so a batch builds the union of its moments'
variants; `MAX_CELLS` bounds that for large placements. Eligibility differs in one case:
the default is the last resort among the variants built (candidates.py), and every set
built holds an eligible variant whenever the placement has one for that user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.learning.replay import Replay
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.features import placement_matrix, user_batch
from decision_worker.ranking.popularity import PlacementPopularity
from decision_worker.ranking.profile import Profile

BATCH = 512  # moments of one placement built together
MAX_CELLS = 200_000  # moments × variants of one batch (its rows' memory)
Done = Callable[[FloatArray, BoolArray], None]  # (rows of `subset`, their eligibility)


@dataclass
class _Moment:
    profile: Profile
    at: float
    subset: IntArray
    popularity: PlacementPopularity
    done: Done


class FeatureBatches:
    """Moments waiting for their rows, per placement; `flush` builds what is left."""

    def __init__(self, replay: Replay, size: int = BATCH, max_cells: int = MAX_CELLS,
                 share: tuple[int, int] = (0, 1),
                 owner: Callable[[str], int] | None = None) -> None:
        """`share` (worker, workers): this one builds the rows of the moments of the users
        `owner` gives it (persons.py), or without `owner` of every workers-th moment, from
        the worker-th on (feature_workers.py); the others' are dropped."""
        self.replay = replay
        self.size = size
        self.max_cells = max_cells
        self.share = share
        self.owner = owner
        self._moments = 0
        self._pending: dict[str, list[_Moment]] = {}
        self._union: dict[str, set[int]] = {}

    def request(self, profile: Profile, placement: str, at: float, subset: IntArray,
                done: Done, user: str = "") -> None:
        """Rows of the candidates `subset` (sorted, with the default) of `placement` for
        `profile` (`user`'s) as it is now and the counts as of `at`; `done` receives them
        later."""
        worker, workers = self.share
        self._moments += 1
        mine = (self._moments - 1) % workers if self.owner is None else self.owner(user)
        if mine != worker:  # another worker's
            self.replay.reload_due(at)  # the worker reloaded then, whoever builds the rows
            return
        moments = self._pending.setdefault(placement, [])
        union = self._union.setdefault(placement, set())
        moments.append(_Moment(frozen(profile), at, subset,
                               self.replay.snapshot(placement, at), done))
        union.update(subset.tolist())
        if len(moments) >= self.size or len(moments) * len(union) >= self.max_cells:
            self._build(placement)

    def flush(self) -> None:
        for placement in list(self._pending):
            self._build(placement)

    def _build(self, placement: str) -> None:
        moments = self._pending.pop(placement)
        union = np.array(sorted(self._union.pop(placement)), dtype=np.int64)
        replay = self.replay
        candidates = replay.catalog.placements[placement]
        users = user_batch([m.profile for m in moments], [m.at for m in moments],
                           replay.catalog, traits=replay.traits)
        if len(union) == len(candidates.variants):
            x, eligible = placement_matrix(users, candidates,
                                           [m.popularity for m in moments])
        else:
            taken: dict[int, PlacementPopularity] = {}
            for m in moments:
                if id(m.popularity) not in taken:
                    taken[id(m.popularity)] = m.popularity.take(union)
            x, eligible = placement_matrix(users, candidates.subset(union),
                                           [taken[id(m.popularity)] for m in moments])
        for u, m in enumerate(moments):
            columns = np.searchsorted(union, m.subset)
            m.done(x[u, columns], eligible[u, columns])


def frozen(profile: Profile) -> Profile:
    """A copy that later events leave alone: every list and dict of the profile copied,
    and the lists held in its dicts (the decayed counters, changed in place)."""
    copied: dict[str, Any] = {}
    for name, value in profile.__dict__.items():
        kind = type(value)
        if kind is list:
            value = value.copy()
        elif kind is dict:
            value = dict(zip(value, map(list.copy, value.values()), strict=True)) \
                if value and type(next(iter(value.values()))) is list else value.copy()
        copied[name] = value
    out = object.__new__(Profile)
    out.__dict__ = copied
    return out
