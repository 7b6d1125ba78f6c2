"""The examples' columns as the replay meets its moments (examples.py), and the slates' groups.

A group's rows (and kept candidates) arrive later, when its moment's batch is built
(feature_batch.py). Each group carries its place in the replay (the event's index, then its
rank among that event's groups), so the groups that several feature workers built, each
for its own persons (persons.py), go back into the one order a single process builds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from decision_worker.learning.feature_batch import FeatureBatches
from decision_worker.learning.replay import Replay
from decision_worker.learning.session_groups import SessionGroup, candidate_pool
from decision_worker.learning.slates import label_of
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.profile import Profile

Order = tuple[int, int]  # (index of the event in the replay, rank among its groups)
_PER_GROUP = ("rows", "sizes", "group_time", "group_placement", "history", "kept", "kinds",
              "users", "traits", "order")
_PER_ROW = ("labels", "positions", "variants", "categories")


class Columns:
    def __init__(self) -> None:
        self.rows: list[FloatArray | None] = []
        self.labels: list[int] = []
        self.positions: list[int] = []
        self.variants: list[str] = []
        self.categories: list[str] = []
        self.sizes: list[int] = []
        self.group_time: list[float] = []
        self.group_placement: list[str] = []
        self.history: list[int] = []
        self.skipped: dict[str, int] = defaultdict(int)
        self.kept: list[tuple[FloatArray, list[str]] | None] = []
        self.kinds: list[str] = []
        self.users: list[str] = []
        self.traits: list[Mapping[str, Any]] = []
        self.order: list[Order] = []
        self.left_out = 0

    def add_group(self, labels: list[int], positions: list[int], variants: list[str],
                  catalog: Catalog, placement: str, at: float, history: int, kind: str,
                  user: str, traits: Mapping[str, Any], order: Order) -> int:
        """A group whose rows are still to come; returns its index."""
        self.rows.append(None)
        self.labels.extend(labels)
        self.positions.extend(positions)
        self.variants.extend(variants)
        self.categories.extend(catalog.category_of[f"{placement}/{v}"] for v in variants)
        self.sizes.append(len(labels))
        self.group_time.append(at)
        self.group_placement.append(placement)
        self.history.append(history)
        self.kept.append(None)
        self.kinds.append(kind)
        self.users.append(user)
        self.traits.append(traits)
        self.order.append(order)
        return len(self.sizes) - 1

    def filled(self) -> dict[int, Any]:
        """Everything this worker built (feature_workers.Filled)."""
        return {0: self}

    def fill(self, built: dict[int, Any]) -> None:
        """Another worker's groups, each put back in its place in the replay."""
        other: Columns = built[0]
        for reason, n in other.skipped.items():
            self.skipped[reason] += n
        self.left_out += other.left_out
        sources = (self, other)
        starts = [np.concatenate([[0], np.cumsum(c.sizes, dtype=np.int64)]).tolist()
                  for c in sources]
        merged = sorted((order, s, g) for s, c in enumerate(sources)
                        for g, order in enumerate(c.order))
        per_group: dict[str, list[Any]] = {name: [] for name in _PER_GROUP}
        per_row: dict[str, list[Any]] = {name: [] for name in _PER_ROW}
        for _, s, g in merged:
            source = sources[s]
            for name, values in per_group.items():
                values.append(getattr(source, name)[g])
            first, last = starts[s][g], starts[s][g + 1]
            for name, values in per_row.items():
                values.extend(getattr(source, name)[first:last])
        for name, values in (per_group | per_row).items():
            setattr(self, name, values)

    def fill_session(self, g: int, group: SessionGroup, x: FloatArray,
                     eligible: BoolArray) -> None:
        self.rows[g], self.kept[g] = group.rows(x, eligible)

    def add_slate(self, replay: Replay, batches: FeatureBatches, user: str,
                  key: tuple[str, str, float], shown: list[Any],
                  engaged: dict[tuple[str, str, str, str], list[float]],
                  attribution_s: float, history: int, keep_rank_limit: int | None,
                  clickless_from: float, order: Order) -> None:
        who, placement, at = key
        catalog = replay.catalog
        views = slate_views(catalog, placement, shown, self.skipped)
        if not views:
            return
        candidates = catalog.placements[placement]
        profile = replay.profiles.get(user) or Profile()
        picked = [i for i, _ in views]
        labels = [label_of(engaged, who, placement, v.variant, at, attribution_s)
                  for _, v in views]
        if at < clickless_from and not any(labels):
            self.left_out += 1
            replay.reload_due(at)  # the moment the worker decided, read or not
            return
        g = self.add_group(labels, [v.position or 0 for _, v in views],
                           [v.variant for _, v in views], catalog, placement, at, history,
                           "slate", user, profile.traits, order)
        # Rows of the shown variants (and the default, which a subset keeps), and with
        # `keep_rank_limit` of every candidate the worker would have ranked then.
        pool = None if keep_rank_limit is None else _would_rank(replay, profile, placement,
                                                                at, keep_rank_limit)
        subset = np.union1d(picked, [candidates.default_index] if pool is None else pool)
        batches.request(profile, placement, at, subset.astype(np.int64),
                        partial(self._fill_slate, g, candidates, subset, picked, pool))

    def _fill_slate(self, g: int, candidates: PlacementCandidates, subset: IntArray,
                    picked: list[int], pool: IntArray | None, x: FloatArray,
                    eligible: BoolArray) -> None:
        self.rows[g] = x[np.searchsorted(subset, picked)]
        if pool is not None:
            where = np.searchsorted(subset, pool)
            ok = eligible[where]
            self.kept[g] = (x[where[ok]], [candidates.variants[i] for i in pool[ok]])


def slate_views(catalog: Catalog, placement: str, shown: list[Any],
                skipped: dict[str, int]) -> list[tuple[int, Any]]:
    """(candidate index, engagement) of a slate's views the catalog holds; none when the
    slate is skipped (counted in `skipped`). A slate with any is a moment the worker
    decided, whichever feature worker builds its rows."""
    candidates = catalog.placements.get(placement)
    if candidates is None:
        skipped["placement not in the catalog"] += 1
        return []
    if len(shown) < 2:
        skipped["single variant shown"] += 1
        return []
    views = []
    for view in shown:
        v = view.engagement
        assert v is not None
        i = candidates.key_index.get(f"{placement}/{v.variant}")
        if i is None:
            skipped["variant not in the catalog"] += 1
            continue
        views.append((i, v))
    return views


def _would_rank(replay: Replay, profile: Profile, placement: str, at: float,
                rank_limit: int) -> IntArray:
    """Every candidate the worker would rank at that moment (after retrieval, for a
    placement larger than `rank_limit`), with the default; the eligible ones among them
    are kept."""
    candidates = replay.catalog.placements[placement]
    if len(candidates.variants) <= rank_limit:  # eligibility comes with the rows
        return np.arange(len(candidates.variants), dtype=np.int64)
    return np.union1d(candidate_pool(replay, profile, placement, at, rank_limit),
                      [candidates.default_index]).astype(np.int64)
