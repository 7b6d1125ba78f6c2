"""Offline replay of the event log through the online feature definitions.

Training must see, for each moment, the features the worker would have scored then: the
same `Profile.apply` on the same events in the same order, the same identity links, the
same popularity counts (as of the moment, reloaded every `stats_reload_s` of event time
as the worker reloads its copy), and the same `user_batch` / `placement_matrix`. Nothing
after the moment is visible.

The order is arrival order (`receivedAt`, then the log's own order), which is the order the
worker applied events in. Decayed counts are order-independent in exact arithmetic but not
in floating point, so replaying by event time instead would differ from what was served in
the last bits; event time still decides every weight and every as-of moment, and
arrival order differs from event time only for late events, which the worker handled the
same way (`lateness_s`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.ingest.event_time import parse_time
from decision_worker.ingest.events import DEFAULT_RULES, Event, EventRules, validate_message
from decision_worker.ingest.message_fields import Engagement
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.context import DEVICES
from decision_worker.ranking.features import placement_matrix, user_batch
from decision_worker.ranking.identity import link_of, may_merge
from decision_worker.ranking.popularity import (
    COUNTED_KINDS,
    STATS_RELOAD_S,
    PlacementPopularity,
    Popularity,
    engagement_counts,
    smooth,
    stat_field,
)
from decision_worker.ranking.profile import Profile, segments_of
from decision_worker.ranking.trait_columns import TraitColumn
from decision_worker.ranking.trending import TrendCounts, TrendFeatures, event_day
from edge_functions.keys import user_tag


def parse_log(messages: Iterable[dict[str, Any]], rules: EventRules = DEFAULT_RULES,
              forgotten: frozenset[str] | set[str] = frozenset(),
              secret: bytes = b"") -> tuple[list[Event], int]:
    """Log lines back into events in arrival order, validated by the API's own rules;
    returns the events and how many lines were not valid events (counted, never fatal).
    Messages of a forgotten id (its keyed hash with `secret` in `forgotten`) are left out."""
    events: list[tuple[dt.datetime, Event]] = []
    invalid = 0
    for message in messages:
        at = parse_time(message.get("receivedAt"))
        if at is None:
            invalid += 1
            continue
        event = validate_message(0, message, at, rules=rules)
        if not isinstance(event, Event):
            invalid += 1
        elif not forgotten or not any(
                user_tag(secret, i) in forgotten
                for i in (event.user_id, event.anonymous_id, event.previous_id) if i):
            events.append((at, event))
    events.sort(key=lambda item: item[0])  # stable: a request's messages keep their order
    return [e for _, e in events], invalid


@dataclass
class Moment:
    user: str
    event: Event
    profile: Profile


class Replay:
    def __init__(self, catalog: Catalog, lateness_s: float,
                 stats_reload_s: float = STATS_RELOAD_S,
                 traits: tuple[TraitColumn, ...] = (),
                 decayed: Callable[[str], bool] | None = None) -> None:
        """`traits`: trait columns to add to the rows, as a worker scoring with a model
        that reads them would (training adds its own later, once it has learned their
        categories: Examples.group_traits). `decayed(user)` false: that user's profile is
        kept without its decayed counters (no row is built of it here: persons.py)."""
        self.catalog = catalog
        self.traits = traits
        self.decayed = decayed
        self.lateness_s = lateness_s
        self.stats_reload_s = stats_reload_s
        self.profiles: dict[str, Profile] = {}
        self.merged: dict[str, str] = {}  # anonymous id → user id
        self.applied_to = ""  # whose profile the last applied event is in (`user_of`)
        # Raw counts per placement, kept as arrays: (views, clicks) of each variant, and
        # the same per device class, as the worker's Redis hash holds them.
        self._counts = {p: np.zeros((2, 1 + len(DEVICES), len(c.variants)))
                        for p, c in catalog.placements.items()}
        self._index = {p: {v: i for i, v in enumerate(c.variants)}
                       for p, c in catalog.placements.items()}
        # Per event day, as the worker's day hashes hold them; what arrived since the last
        # reload waits in `_unloaded`, as it waits in Redis for the worker's next reload.
        self._trends = TrendCounts()
        self._unloaded: list[tuple[int, tuple[str, ...]]] = []  # (day, stat fields) per event
        # The last reload: when, how many of `_unloaded` it took, the counts it read, and
        # what was built of them (None: not read yet).
        self._popularity_at = float("-inf")
        self._due = 0
        self._loaded = {p: counts.copy() for p, counts in self._counts.items()}
        self._popularity: Popularity | None = Popularity()
        self._snapshots: dict[tuple[str, int], PlacementPopularity] = {}  # of the reload
        self._counted_memo: dict[tuple[str, str, str, tuple[str, str, str | None]],
                                 tuple[tuple[str, ...],
                                       tuple[tuple[np.ndarray, tuple[int, int, int]], ...]]
                                 ] = {}

    def user_of(self, event: Event) -> str:
        if event.user_id is not None:
            return event.user_id
        anonymous = event.anonymous_id or ""
        return self.merged.get(anonymous, anonymous)

    def apply(self, event: Event) -> Profile:
        """Apply one event as the worker does; returns the profile it landed in."""
        link = link_of(event)
        if link is not None:
            known, other = link
            if may_merge(self.merged.get(other), known):
                profile = self._profile(known)
                source = self.profiles.pop(other, None) or Profile()
                if profile.merge(source, other):
                    self.merged[other] = known
        user = self.applied_to = self.user_of(event)
        profile = self._profile(user)
        outcome = profile.apply(event, event.message_id, self.catalog.category_of,
                                self.lateness_s, self.decayed is None or self.decayed(user))
        engagement = event.engagement
        if outcome == "applied" and engagement is not None:
            day = event_day(event.timestamp.timestamp())
            fields, cells = self._counted(engagement, segments_of(profile))
            self._unloaded.append((day, fields))
            for counts, cell in cells:
                counts[cell] += 1
        return profile

    def _counted(self, engagement: Engagement, segments: tuple[str, str, str | None]
                 ) -> tuple[tuple[str, ...], tuple[tuple[np.ndarray, tuple[int, int, int]], ...]]:
        """What an applied engagement adds (popularity.engagement_counts): its stat fields
        (every one a trend count), and the popularity arrays and cells some of them count
        in. Found once per engagement and segments: a few thousand, for millions of events."""
        memo = (engagement.kind, engagement.placement, engagement.variant, segments)
        found = self._counted_memo.get(memo)
        if found is None:
            key = f"{engagement.placement}/{engagement.variant}"
            fields, cells = [], []
            for kind, _, segment in engagement_counts(engagement.kind, key, segments,
                                                      self.catalog.category_of):
                fields.append(stat_field(kind, key, segment))
                if segment is None or segment in DEVICES:  # popularity's rows
                    cells.append((self._counts[engagement.placement],
                                  (COUNTED_KINDS.index(kind),
                                   0 if segment is None else 1 + DEVICES.index(segment),
                                   self._index[engagement.placement][engagement.variant])))
            found = self._counted_memo[memo] = (tuple(fields), tuple(cells))
        return found

    def _profile(self, user: str) -> Profile:
        profile = self.profiles.get(user)
        if profile is None:
            profile = self.profiles[user] = Profile()
        return profile

    def reload_due(self, at: float) -> None:
        """A decision moment at `at`: the worker reloads its copy of the counts when
        `stats_reload_s` have passed since its last reload. The copy is built only when
        it is read (training reads few of its moments: slates without a click are left
        out), from the counts kept at the reload."""
        if at - self._popularity_at >= self.stats_reload_s:
            self._popularity_at = at
            self._due = len(self._unloaded)
            self._loaded = {p: counts.copy() for p, counts in self._counts.items()}
            self._popularity = None
            self._snapshots = {}

    def popularity(self, at: float) -> Popularity:
        """The counts as the worker would have had them at `at`."""
        self.reload_due(at)
        if self._popularity is None:
            self._load_trends()
            snapshot = Popularity(trends=self._trends)
            for placement in self._loaded:
                candidates = self.catalog.placements[placement]
                snapshot.remember(candidates, self._smoothed(placement))
            self._popularity = snapshot
        return self._popularity

    def snapshot(self, placement: str, at: float) -> PlacementPopularity:
        """`popularity(at)` of one placement, its trend features (read lazily from counts
        that keep growing) resolved now: what a moment whose rows are built later reads
        (feature_batch.py). Only that placement's counts are smoothed."""
        self.reload_due(at)
        day = event_day(at)
        found = self._snapshots.get((placement, day))
        if found is None:
            self._load_trends()
            found = self._smoothed(placement)
            found.trend_at = _resolved(day, self._trends.features(
                self.catalog.placements[placement], day))
            self._snapshots[(placement, day)] = found
        return found

    def _load_trends(self) -> None:
        """Into the trend counts, what the last reload read of them."""
        self._trends.add_each(self._unloaded[:self._due])
        del self._unloaded[:self._due]
        self._due = 0

    def _smoothed(self, placement: str) -> PlacementPopularity:
        counts = self._loaded[placement]
        return smooth(counts[0, 0], counts[1, 0], counts[0, 1:], counts[1, 1:])

    def features(self, profile: Profile, placement: str, as_of: float,
                 subset: IntArray | None = None) -> tuple[FloatArray, BoolArray]:
        """(V, F) features of every candidate of `placement` (or of the `subset` of
        indices, which must include the default), and the eligibility mask."""
        users = user_batch([profile], [as_of], self.catalog, traits=self.traits)
        candidates = self.catalog.placements[placement]
        if subset is None:
            x, eligible = placement_matrix(users, candidates, self.popularity(as_of))
        else:
            full = self.popularity(as_of).for_placement(candidates)
            x, eligible = placement_matrix(users, candidates.subset(subset), full.take(subset))
        return x[0], eligible[0]


def _resolved(day: int, trend: TrendFeatures) -> Callable[[int], TrendFeatures]:
    def trend_at(asked: int) -> TrendFeatures:
        if asked != day:
            raise ValueError(f"trend features resolved for day {day}, asked for {asked}")
        return trend
    return trend_at


def session_moments(replay: Replay, events: Iterable[Event]) -> Iterator[Moment]:
    """Every session start, right after it is applied: the moments the worker decides."""
    for event in events:
        profile = replay.apply(event)
        if event.session_start:
            yield Moment(replay.user_of(event), event, profile)
