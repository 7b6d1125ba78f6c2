"""Training examples from the event log: one group per decision opportunity.

A decision opportunity is a slate: the `Variant Viewed` events of one user and placement
with the same timestamp, each with its position. Its label per variant is the engagement
that followed within the attribution window: 0 viewed, 1 clicked, 2 converted. Its features
are the worker's own (`Replay.features`), taken just before the slate's views are applied,
so nothing at or after the impression leaks in.

Groups where nothing was clicked carry no ranking signal and are dropped from training (kept
for the AUC of click prediction); a placement with a single shown variant is a documented
skip, not an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from decision_worker.ingest.events import Event
from decision_worker.learning.example_columns import Columns, slate_views
from decision_worker.learning.feature_batch import FeatureBatches
from decision_worker.learning.feature_workers import Share, shared
from decision_worker.learning.persons import Persons
from decision_worker.learning.replay import Replay
from decision_worker.learning.session_groups import (
    ORGANIC_POSITION,
    Engaged,
    engaged_after,
    next_session_starts,
    session_groups,
)
from decision_worker.learning.slates import engagement_times, shown_slates
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.candidates import Catalog

ATTRIBUTION_S = 30 * 60


@dataclass
class Examples:
    x: FloatArray  # (N, F)
    label: np.ndarray  # (N,) 0 / 1 / 2
    position: np.ndarray  # (N,) logged slot
    group_sizes: list[int]
    group_time: np.ndarray  # (G,) unix seconds of each slate
    group_placement: list[str]
    group_history: np.ndarray  # (G,) events the user had before the slate
    variant: list[str]  # (N,) variant ids
    category: list[str]  # (N,) their categories
    skipped: dict[str, int] = field(default_factory=dict)
    # With keep_candidates: per group, every eligible candidate's row and id, for what the
    # model *would* show (coverage, diversity), not only what was logged.
    # One entry per group (None where not kept).
    candidates: list[tuple[FloatArray, list[str]] | None] = field(default_factory=list)
    # Per group: "slate" (logged views) or "session" (a session start, session_groups.py),
    # and whose it was (bootstrap intervals resample users).
    group_kind: list[str] = field(default_factory=list)
    group_user: list[str] = field(default_factory=list)
    # Per group: the user's traits then (Profile.traits, never changed in place), which
    # become columns once training has learned their categories (feature_fit.py).
    group_traits: list[Mapping[str, Any]] = field(default_factory=list)
    # Slates without a click before `clickless_from` (build_examples), never built
    left_out: int = 0

    def __len__(self) -> int:
        return len(self.label)

    @property
    def groups(self) -> int:
        return len(self.group_sizes)

    def select(self, keep: Sequence[bool] | np.ndarray) -> Examples:
        """The groups where `keep` is true, in order."""
        keep = np.asarray(keep, dtype=bool)
        starts = np.concatenate([[0], np.cumsum(self.group_sizes)])
        rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in np.flatnonzero(keep)]
                              or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
        return Examples(self.x[rows], self.label[rows], self.position[rows],
                        [s for s, k in zip(self.group_sizes, keep, strict=True) if k],
                        self.group_time[keep],
                        [p for p, k in zip(self.group_placement, keep, strict=True) if k],
                        self.group_history[keep], [self.variant[r] for r in rows],
                        [self.category[r] for r in rows], dict(self.skipped),
                        [c for c, k in zip(self.candidates, keep, strict=True) if k],
                        [c for c, k in zip(self.group_kind, keep, strict=True) if k],
                        [c for c, k in zip(self.group_user, keep, strict=True) if k],
                        [c for c, k in zip(self.group_traits, keep, strict=True) if k])

    def shuffled(self, seed: int = 0) -> Examples:
        """Rows in a random order within each group. Logs list a slate in display order,
        and a sort that keeps ties in input order would then rank by position: an
        all-ties model would look as good as the position bias. Training and evaluation
        therefore never see the logged order."""
        rows = self.shuffle_order(seed)
        return Examples(self.x[rows], self.label[rows], self.position[rows],
                        list(self.group_sizes), self.group_time, list(self.group_placement),
                        self.group_history, [self.variant[r] for r in rows],
                        [self.category[r] for r in rows], dict(self.skipped),
                        list(self.candidates), list(self.group_kind), list(self.group_user),
                        list(self.group_traits))

    def shuffle_order(self, seed: int = 0) -> np.ndarray:
        """The row order of `shuffled(seed)`."""
        rng = np.random.default_rng(seed)
        starts = np.concatenate([[0], np.cumsum(self.group_sizes)]).astype(np.int64)
        return np.concatenate([starts[g] + rng.permutation(size)
                               for g, size in enumerate(self.group_sizes)]
                              or [np.zeros(0, dtype=np.int64)]).astype(np.int64)

    def with_clicks(self) -> Examples:
        starts = np.concatenate([[0], np.cumsum(self.group_sizes)])
        return self.select([self.label[starts[g]:starts[g + 1]].max() > 0
                            for g in range(self.groups)])


def build_examples(events: list[Event], catalog: Catalog, lateness_s: float,
                   since: float = float("-inf"), until: float = float("inf"),
                   attribution_s: float = ATTRIBUTION_S,
                   keep_candidates: bool = False,
                   keep_candidates_since: float = float("-inf"),
                   keep_sessions_since: float | None = None,
                   rank_limit: int = 500,
                   clickless_from: float = float("-inf"), workers: int = 1) -> Examples:
    """Replay `events` (arrival order, see replay.py) and emit the slates shown in
    [since, until). Everything before `since` still builds the profiles. With
    `keep_candidates`, every eligible candidate's row is kept for slates from
    `keep_candidates_since` on (the evaluation window: it is the memory-hungry part), and
    for session starts from `keep_sessions_since` (default: the same) on. Slates without
    a click shown before `clickless_from` are only counted (`Examples.left_out`): training
    drops them (`with_clicks`), and they were most of the replay's time. `workers`
    processes build the rows, each of its own persons' moments (feature_workers.py,
    persons.py): the same examples, sooner."""
    keep = (keep_candidates, keep_candidates_since, keep_sessions_since)
    next_start = next_session_starts(events)
    starting = {e.user_id or e.anonymous_id or "" for e in events if id(e) in next_start}
    found = _Found(engagement_times(events), engaged_after(events, starting), next_start,
                   shown_slates(events), Persons(events, workers))
    return _as_examples(shared(partial(_replay, events, found, catalog, lateness_s,
                                       (since, until), attribution_s, keep, rank_limit,
                                       clickless_from), workers))


@dataclass
class _Found:
    """What the log holds beyond the moments (labels, session ends, slates, persons),
    found once."""

    engaged: dict[tuple[str, str, str, str], list[float]]
    after: Engaged
    next_start: dict[int, float]
    slates: dict[tuple[str, str, float], list[Event]]
    persons: Persons


def _replay(events: list[Event], found: _Found, catalog: Catalog, lateness_s: float,
            window: tuple[float, float], attribution_s: float,
            keeping: tuple[bool, float, float | None], rank_limit: int,
            clickless_from: float, share: Share) -> Columns:
    """build_examples' replay; the groups of this worker's `share` of the persons built,
    the others' moments only reloading the counts when the worker did."""
    since, until = window
    keep_candidates, keep_candidates_since, keep_sessions_since = keeping
    engaged, after, next_start, slates = (found.engaged, found.after, found.next_start,
                                          found.slates)
    first_view = {id(shown[0]): key for key, shown in slates.items()}
    mine = partial(_is_mine, found.persons, share[0])
    # Others' profiles without decayed counters, unless retrieval reads them (a session's
    # groups of a placement larger than `rank_limit`: session_groups.candidate_pool).
    light = all(len(c.variants) <= rank_limit for c in catalog.placements.values())
    replay = Replay(catalog, lateness_s, decayed=mine if light else None)
    batches = FeatureBatches(replay)
    out = Columns()
    applied_events: dict[str, int] = defaultdict(int)
    for i, event in enumerate(events):
        slate_key = first_view.get(id(event))
        if slate_key is not None and since <= slate_key[2] < until:
            user = replay.user_of(event)
            if mine(user):
                keep = keep_candidates and slate_key[2] >= keep_candidates_since
                out.add_slate(replay, batches, user, slate_key, slates[slate_key], engaged,
                              attribution_s, applied_events[user],
                              rank_limit if keep else None, clickless_from, (i, 0))
            elif slate_views(catalog, slate_key[1], slates[slate_key], defaultdict(int)):
                replay.reload_due(slate_key[2])  # the worker decided then
        profile = replay.apply(event)  # outside the window too: it builds the profiles
        user = replay.user_of(event)
        at = event.timestamp.timestamp()
        if event.session_start and since <= at < until:
            keep = keep_candidates and at >= (
                keep_candidates_since if keep_sessions_since is None else keep_sessions_since)
            groups = session_groups(replay, event, profile, after, next_start[id(event)],
                                    rank_limit, keep)
            if groups and not mine(user):
                replay.reload_due(at)  # the worker decided then
                groups = []
            for k, group in enumerate(groups, start=1):
                g = out.add_group(group.labels, [ORGANIC_POSITION] * len(group.labels),
                                  group.variants, replay.catalog, group.placement, at,
                                  applied_events[user], "session", user, profile.traits,
                                  (i, k))
                batches.request(profile, group.placement, at, group.wanted,
                                partial(out.fill_session, g, group))
        applied_events[user] += 1
    batches.flush()
    return out


def _is_mine(persons: Persons, worker: int, user: str) -> bool:
    return persons.owner(user) == worker


def _as_examples(columns: Columns) -> Examples:
    rows = [r for r in columns.rows if r is not None]
    assert len(rows) == len(columns.rows), "a group's rows were never built"
    matrix = np.vstack(rows) if rows else np.zeros((0, 0))
    return Examples(matrix, np.array(columns.labels, dtype=np.int64),
                    np.array(columns.positions, dtype=np.int64), columns.sizes,
                    np.array(columns.group_time), columns.group_placement,
                    np.array(columns.history, dtype=np.int64), columns.variants,
                    columns.categories, dict(columns.skipped), columns.kept, columns.kinds,
                    columns.users, columns.traits, columns.left_out)
