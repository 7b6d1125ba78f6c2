"""Popularity: how often each variant was viewed and clicked, overall and per device class,
kept in one Redis hash and smoothed towards its placement's average.

Smoothing (a Beta prior worth `PRIOR_VIEWS` views) pulls thin evidence towards the
placement's rate: 1 click in 2 views reads as about 11 %, not 50 %, beside a placement at
9 % (and 900 in 10,000 stays 9 %); the per-device rate is smoothed towards the variant's
overall rate, so a thin context falls back to the global figure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from decision_worker.ranking.arrays import FloatArray, IntArray
from decision_worker.ranking.candidates import PlacementCandidates
from decision_worker.ranking.context import DEVICES
from decision_worker.ranking.trending import TrendCounts, TrendFeatures

STATS_RELOAD_S = 5.0  # how stale the worker's copy of the counts may get (replayed offline)
PRIOR_VIEWS = 50.0
PLACEMENT_PRIOR = (1.0, 20.0)  # (clicks, views): a 5 % click-through before any data


COUNTED_KINDS = ("view", "click")  # what the smoothed click-through is made of


def engagement_counts(kind: str, key: str, segments: tuple[str, str, str | None],
                      published: Collection[str]) -> tuple[tuple[str, str, str | None], ...]:
    """What one applied engagement adds to the popularity counts: `(kind, key, None)` and
    `(kind, key, device)`; for a click also `(kind, key, "s:<source>")` and, given a
    language, `(kind, key, "l:<language>")`, the segments trending.py shares clicks by (views
    per source and language are read by nothing, so not kept). Nothing for an unpublished
    "placement/variant" `key` or an uncounted kind: the counts stay bounded by the catalog.
    `segments`: profile.segments_of. The worker turns them into Redis hash fields, the
    replay into array cells."""
    if kind not in COUNTED_KINDS or key not in published:
        return ()
    device, source, language = segments
    if kind != "click":
        return (kind, key, None), (kind, key, device)
    if language is None:
        return (kind, key, None), (kind, key, device), (kind, key, f"s:{source}")
    return ((kind, key, None), (kind, key, device), (kind, key, f"s:{source}"),
            (kind, key, f"l:{language}"))


def stat_field(kind: str, key: str, segment: str | None = None) -> str:
    return f"{kind}|{key}" if segment is None else f"{kind}|{key}|{segment}"


@dataclass
class PlacementPopularity:
    ctr: FloatArray  # (V,) smoothed click-through
    views: FloatArray  # (V,) raw view counts
    device_ctr: FloatArray  # (devices, V) smoothed per device, towards `ctr`
    # The trend features at a reference day (trending.py); None: no counts kept.
    trend_at: Callable[[int], TrendFeatures] | None = None

    def take(self, indices: IntArray) -> PlacementPopularity:
        trend_at = self.trend_at
        return PlacementPopularity(
            self.ctr[indices], self.views[indices], self.device_ctr[:, indices],
            None if trend_at is None else lambda day: trend_at(day).take(indices))


@dataclass
class Popularity:
    counts: dict[str, float] = field(default_factory=dict)
    trends: TrendCounts = field(default_factory=TrendCounts)
    _cache: dict[str, PlacementPopularity] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str],
                  trends: TrendCounts | None = None) -> Popularity:
        counts = {}
        for name, value in raw.items():
            key = name.decode() if isinstance(name, bytes) else name
            counts[key] = float(value)
        return cls(counts, trends or TrendCounts())

    def remember(self, candidates: PlacementCandidates,
                 counts: PlacementPopularity) -> None:
        """Keep a placement's smoothed counts (built elsewhere: the replay's arrays)."""
        counts.trend_at = lambda day: self.trends.features(candidates, day)
        self._cache[candidates.placement] = counts

    def for_placement(self, candidates: PlacementCandidates) -> PlacementPopularity:
        cached = self._cache.get(candidates.placement)
        if cached is not None and len(cached.ctr) == len(candidates.keys):
            return cached
        get = self.counts.get
        keys = candidates.keys
        result = smooth(
            np.array([get(stat_field("view", k), 0.0) for k in keys]),
            np.array([get(stat_field("click", k), 0.0) for k in keys]),
            np.array([[get(stat_field("view", k, d), 0.0) for k in keys] for d in DEVICES]),
            np.array([[get(stat_field("click", k, d), 0.0) for k in keys] for d in DEVICES]))
        self.remember(candidates, result)
        return result


def smooth(views: FloatArray, clicks: FloatArray, device_views: FloatArray,
           device_clicks: FloatArray) -> PlacementPopularity:
    """Raw counts of one placement's variants (overall, and (devices, V) per device) →
    smoothed rates. Online the counts come from Redis, offline from the replay."""
    prior = (clicks.sum() + PLACEMENT_PRIOR[0]) / (views.sum() + PLACEMENT_PRIOR[1])
    ctr = (clicks + PRIOR_VIEWS * prior) / (views + PRIOR_VIEWS)
    device_ctr = (device_clicks + PRIOR_VIEWS * ctr[None, :]) / (device_views + PRIOR_VIEWS)
    return PlacementPopularity(ctr, views, device_ctr)
