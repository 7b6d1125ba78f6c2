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
from decision_worker.learning.clickless_sample import ClicklessSample, plan
from decision_worker.learning.feature_batch import FeatureBatches
from decision_worker.learning.feature_workers import Share, shared
from decision_worker.learning.persons import Persons
from decision_worker.learning.replay import Replay
from decision_worker.learning.session_groups import (
    ORGANIC_POSITION,
    Engaged,
    SessionGroup,
    engaged_after,
    next_session_starts,
    session_groups,
    would_rank,
)
from decision_worker.learning.slates import engagement_times, label_of, shown_slates
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.profile import Profile

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
    # Per group: how many groups of the window it stands for (clickless_sample.py: a
    # sampled slate without a click counts 1 / share times); None: each counts once
    group_weight: FloatArray | None = None
    clickless: ClicklessSample = ClicklessSample()

    def __len__(self) -> int:
        return len(self.label)

    def weights(self) -> FloatArray:
        """(G,) what each group counts for in the evaluation's figures."""
        return np.ones(self.groups) if self.group_weight is None else self.group_weight

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
                        [c for c, k in zip(self.group_traits, keep, strict=True) if k],
                        group_weight=None if self.group_weight is None
                        else self.group_weight[keep], clickless=self.clickless)

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
                        list(self.group_traits), group_weight=self.group_weight,
                        clickless=self.clickless)

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
                   clickless_from: float = float("-inf"), clickless_kept: int | None = None,
                   workers: int = 1,
                   slates: dict[tuple[str, str, float], list[Event]] | None = None) -> Examples:
    """Replay `events` (arrival order, see replay.py) and emit the slates shown in
    [since, until). Everything before `since` still builds the profiles. With
    `keep_candidates`, every eligible candidate's row is kept for slates from
    `keep_candidates_since` on (the evaluation window: it is the memory-hungry part), and
    for session starts from `keep_sessions_since` (default: the same) on. Slates without
    a click shown before `clickless_from` are only counted (`Examples.left_out`): training
    drops them (`with_clicks`), and they were most of the replay's time; from it on, with
    `clickless_kept`, a sample of about that many (clickless_sample.py). `workers`
    processes build the rows (feature_workers.py): the same examples, sooner."""
    keep = (keep_candidates, keep_candidates_since, keep_sessions_since)
    next_start = next_session_starts(events)
    starting = {e.user_id or e.anonymous_id or "" for e in events if id(e) in next_start}
    engaged = engagement_times(events)
    slates = shown_slates(events) if slates is None else slates  # found by the caller?
    sample = plan(slates, engaged, (max(since, clickless_from), until), attribution_s,
                  clickless_kept)
    # By person where no placement needs retrieval (which reads the profile's counters,
    # and decides a session's groups in every worker); by turns otherwise.
    whole = all(len(c.variants) <= rank_limit for c in catalog.placements.values())
    found = _Found(engaged, engaged_after(events, starting), next_start, slates, sample,
                   Persons(events, workers) if workers > 1 and whole else None,
                   {id(shown[0]): key for key, shown in slates.items()})
    return shared(partial(_replay, events, found, catalog, lateness_s, (since, until),
                          attribution_s, keep, rank_limit, clickless_from), workers).examples()


@dataclass
class _Found:
    """What the log holds beyond the moments (labels, session ends, slates), found once."""

    engaged: dict[tuple[str, str, str, str], list[float]]
    after: Engaged
    next_start: dict[int, float]
    slates: dict[tuple[str, str, float], list[Event]]
    sample: ClicklessSample
    persons: Persons | None  # whose moments each worker builds (None: by turns)
    first_view: dict[int, tuple[str, str, float]]  # a slate's first view → the slate


def _replay(events: list[Event], found: _Found, catalog: Catalog, lateness_s: float,
            window: tuple[float, float], attribution_s: float,
            keeping: tuple[bool, float, float | None], rank_limit: int,
            clickless_from: float, share: Share) -> _Columns:
    """build_examples' replay; its `share` of the moments' rows built."""
    since, until = window
    keep_candidates, keep_candidates_since, keep_sessions_since = keeping
    engaged, after, next_start, slates = (found.engaged, found.after, found.next_start,
                                          found.slates)
    first_view = found.first_view  # found before the fork: once, not once per worker
    persons = found.persons
    replay = Replay(catalog, lateness_s, decayed=None if persons is None else (
        lambda user: persons.owner(user) == share[0]))
    batches = FeatureBatches(replay, share=share,
                             owner=None if persons is None else persons.owner)
    out = _Columns(found.sample)
    applied_events: dict[str, int] = defaultdict(int)
    for event in events:
        slate_key = first_view.get(id(event))
        if slate_key is not None and since <= slate_key[2] < until:
            user = replay.user_of(event)
            keep = keep_candidates and slate_key[2] >= keep_candidates_since
            out.add_slate(replay, batches, user, slate_key, slates[slate_key], engaged,
                          attribution_s, applied_events[user], rank_limit if keep else None,
                          clickless_from)
        profile = replay.apply(event)  # outside the window too: it builds the profiles
        user = replay.applied_to
        at = event.timestamp.timestamp()
        if event.session_start and since <= at < until:
            keep = keep_candidates and at >= (
                keep_candidates_since if keep_sessions_since is None else keep_sessions_since)
            for group in session_groups(replay, event, profile, after, next_start[id(event)],
                                        rank_limit, keep):
                g = out.add_group(group.labels, [ORGANIC_POSITION] * len(group.labels),
                                  group.variants, replay.catalog, group.placement, at,
                                  applied_events[user], "session", user, profile.traits)
                batches.request(profile, group.placement, at, group.wanted,
                                partial(out.fill_session, g, group), user)
        applied_events[user] += 1
    batches.flush()
    return out


class _Columns:
    """The examples' columns as the slates come; a group's rows (and kept candidates)
    arrive later, when its moment's batch is built (feature_batch.py)."""

    def __init__(self, sample: ClicklessSample) -> None:
        self.sample = sample
        self.weights: list[float] = []
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
        self.left_out = 0

    def add_group(self, labels: list[int], positions: list[int], variants: list[str],
                  catalog: Catalog, placement: str, at: float, history: int, kind: str,
                  user: str, traits: Mapping[str, Any], weight: float = 1.0) -> int:
        """A group whose rows are still to come; returns its index."""
        self.rows.append(None)
        self.weights.append(weight)
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
        return len(self.sizes) - 1

    def filled(self) -> dict[int, tuple[FloatArray, tuple[FloatArray, list[str]] | None]]:
        return {g: (rows, self.kept[g]) for g, rows in enumerate(self.rows)
                if rows is not None}

    def fill(self, built: dict[int, tuple[FloatArray, tuple[FloatArray, list[str]] | None]]
             ) -> None:
        for g, (rows, kept) in built.items():
            self.rows[g], self.kept[g] = rows, kept

    def fill_session(self, g: int, group: SessionGroup, x: FloatArray,
                     eligible: BoolArray) -> None:
        self.rows[g], self.kept[g] = group.rows(x, eligible)

    def add_slate(self, replay: Replay, batches: FeatureBatches, user: str,
                  key: tuple[str, str, float], shown: list[Event],
                  engaged: dict[tuple[str, str, str, str], list[float]],
                  attribution_s: float, history: int, keep_rank_limit: int | None,
                  clickless_from: float) -> None:
        who, placement, at = key
        catalog = replay.catalog
        candidates = catalog.placements.get(placement)
        if candidates is None:
            self.skipped["placement not in the catalog"] += 1
            return
        if len(shown) < 2:
            self.skipped["single variant shown"] += 1
            return
        profile = replay.profiles.get(user) or Profile()
        picked: list[int] = []
        labels, positions, variants = [], [], []
        for view in shown:
            v = view.engagement
            assert v is not None
            i = candidates.key_index.get(f"{placement}/{v.variant}")
            if i is None:
                self.skipped["variant not in the catalog"] += 1
                continue
            picked.append(i)
            labels.append(label_of(engaged, who, placement, v.variant, at, attribution_s))
            positions.append(v.position or 0)
            variants.append(v.variant)
        if not picked:
            return
        clicked = any(labels)
        if not clicked and (at < clickless_from or not self.sample.keeps(key)):
            self.left_out += at < clickless_from
            replay.reload_due(at)  # the moment the worker decided, read or not
            return
        g = self.add_group(labels, positions, variants, catalog, placement, at, history,
                           "slate", user, profile.traits,
                           1.0 if clicked else self.sample.weight)
        # Rows of the shown variants (and the default, which a subset keeps), and with
        # `keep_rank_limit` of every candidate the worker would have ranked then.
        pool = None if keep_rank_limit is None else would_rank(replay, profile, placement,
                                                                at, keep_rank_limit)
        subset = np.union1d(picked, [candidates.default_index] if pool is None else pool)
        batches.request(profile, placement, at, subset.astype(np.int64),
                        partial(self._fill_slate, g, candidates, subset, picked, pool), user)

    def _fill_slate(self, g: int, candidates: PlacementCandidates, subset: IntArray,
                    picked: list[int], pool: IntArray | None, x: FloatArray,
                    eligible: BoolArray) -> None:
        self.rows[g] = x[np.searchsorted(subset, picked)]
        if pool is not None:
            where = np.searchsorted(subset, pool)
            ok = eligible[where]
            self.kept[g] = (x[where[ok]], [candidates.variants[i] for i in pool[ok]])

    def examples(self) -> Examples:
        rows = [r for r in self.rows if r is not None]
        assert len(rows) == len(self.rows), "a group's rows were never built"
        matrix = np.vstack(rows) if rows else np.zeros((0, 0))
        return Examples(matrix, np.array(self.labels, dtype=np.int64),
                        np.array(self.positions, dtype=np.int64), self.sizes,
                        np.array(self.group_time), self.group_placement,
                        np.array(self.history, dtype=np.int64), self.variants,
                        self.categories, dict(self.skipped), self.kept, self.kinds,
                        self.users, self.traits, self.left_out,
                        None if self.sample.share >= 1.0 else np.array(self.weights),
                        self.sample)

