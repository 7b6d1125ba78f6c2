"""Trending: engagement counts per *event day*, decayed with several half-lives.

The worker counts every applied view and click twice: into the lifetime hash
(popularity.py) and into a hash of the event's day. A decision at moment t reads, for each
half-life h, Σ_days count(day) · w_h(day(t) − day) per variant (overall and per device
class), and turns it into features (`trend_features`): the log share of the placement's
decayed clicks, a decayed click-through, and the share within the user's device class.

Why days and rounded weights: the worker rebuilds these sums from its copy of Redis, the
offline replay from the log, in different orders and with different batching. Counts are
integers and every weight is a multiple of 1/256 (`round(256 · 2^(−age/h)) / 256`, so zero
beyond about nine half-lives), hence every partial sum is exact in float64 and both sides
get the same bits whatever the order. A day's resolution is the price (a 1-day half-life
counts today's clicks fully, yesterday's half).

The reference day is the decision's own event time, not the worker's clock: a replayed
history is decided as it was then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import FloatArray, IntArray
from decision_worker.ranking.candidates import PlacementCandidates
from decision_worker.ranking.context import DEVICES, SOURCES, TREND_LANGUAGES

HALF_LIVES_DAYS = (1, 7, 30, 365)
WEIGHT_STEP = 256
HORIZON_DAYS = 9 * max(HALF_LIVES_DAYS) + 1  # older days weigh 0 at every half-life
DAY_S = 86_400
SHARE_PRIOR = 0.1  # decayed clicks every variant starts with (a new variant's share)
CTR_PRIOR_VIEWS = 50.0  # as popularity.py's smoothing
CTX_PRIOR_CLICKS = 5.0  # a device class's share leans on the overall share this much
CTX_HALF_LIFE = 30
_KINDS = ("view", "click")
# Rows of counts per variant: overall, then one per device class, traffic source and
# language (popularity.engagement_counts: its segments' stat fields).
SEGMENT_ROW = {segment: 1 + i for i, segment in enumerate(
    [*DEVICES, *(f"s:{s}" for s in SOURCES), *(f"l:{x}" for x in TREND_LANGUAGES)])}
_ROWS = 1 + len(SEGMENT_ROW)
_SOURCE_ROWS = slice(1 + len(DEVICES), 1 + len(DEVICES) + len(SOURCES))
_LANGUAGE_ROWS = slice(_SOURCE_ROWS.stop, _ROWS)
TREND_FEATURES = tuple(f"trend_{h}d" for h in HALF_LIVES_DAYS) + (
    f"trend_ctr_{CTX_HALF_LIFE}d",)
_CTX = HALF_LIVES_DAYS.index(CTX_HALF_LIFE)
_FEW = 64  # entries added with np.add.at rather than a bincount over every cell


def event_day(ts: float) -> int:
    return int(ts // DAY_S)


def _weight_table() -> FloatArray:
    ages = np.arange(HORIZON_DAYS + 1, dtype=np.float64)
    table = np.array([np.round(WEIGHT_STEP * np.exp2(-ages / h)) / WEIGHT_STEP
                      for h in HALF_LIVES_DAYS])
    table[:, -1] = 0.0  # the slot every out-of-range age reads
    return table


WEIGHTS = _weight_table()  # (H, HORIZON_DAYS + 1)


def decay_weights(ages: IntArray) -> FloatArray:
    """(H, N) weights of counts `ages` days old (a future or too old day weighs 0)."""
    clipped = np.where((ages >= 0) & (ages < HORIZON_DAYS), ages, HORIZON_DAYS)
    return WEIGHTS[:, clipped]


@dataclass
class TrendFeatures:
    overall: FloatArray  # (len(TREND_FEATURES), V)
    device: FloatArray  # (devices, V): log share of decayed clicks within a device class
    source: FloatArray  # (sources, V): the same within a traffic source
    language: FloatArray  # (languages + 1, V): within a language; the last row: overall

    def take(self, indices: IntArray) -> TrendFeatures:
        return TrendFeatures(self.overall[:, indices], self.device[:, indices],
                             self.source[:, indices], self.language[:, indices])


class _Flat:
    """One placement's counts as (day, cell, n) entries, cell = (kind·rows + row)·V + v."""

    def __init__(self, candidates: PlacementCandidates) -> None:
        self.candidates = candidates
        self.chunks: list[tuple[IntArray, IntArray, FloatArray]] = []
        self.totals: dict[int, FloatArray] = {}  # reference day → (H, cells)
        self._cells: dict[str, int | None] = {}  # `cell` of each field met

    def cell(self, field: str) -> int | None:
        parts = field.split("|")
        if len(parts) not in (2, 3) or parts[0] not in _KINDS:
            return None
        v = self.candidates.key_index.get(parts[1])
        if v is None:
            return None
        row = 0 if len(parts) == 2 else SEGMENT_ROW.get(parts[2])
        if row is None:
            return None
        n_variants = len(self.candidates.variants)
        return (_KINDS.index(parts[0]) * _ROWS + row) * n_variants + v

    def add(self, entries: list[tuple[int, str, int]]) -> None:
        known, cell = self._cells, self.cell  # a few thousand fields, millions of entries
        cells = [(day, known[field] if field in known else known.setdefault(field, cell(field)),
                  n) for day, field, n in entries]
        kept = [(d, c, n) for d, c, n in cells if c is not None]
        if not kept:
            return
        days = np.array([d for d, _, _ in kept], dtype=np.int64)
        where = np.array([c for _, c, _ in kept], dtype=np.int64)
        counts = np.array([n for _, _, n in kept], dtype=np.float64)
        self.chunks.append((days, where, counts))
        for reference, totals in self.totals.items():
            weighted = decay_weights(reference - days) * counts
            if len(where) <= _FEW:  # the replay's reloads: a few entries each
                np.add.at(totals.T, where, weighted.T)  # exact sums (above): the same bits
                continue
            for h in range(len(HALF_LIVES_DAYS)):
                totals[h] += np.bincount(where, weighted[h], minlength=totals.shape[1])

    def at(self, reference: int) -> FloatArray:
        totals = self.totals.get(reference)
        if totals is None:
            size = len(_KINDS) * _ROWS * len(self.candidates.variants)
            totals = np.zeros((len(HALF_LIVES_DAYS), size))
            if self.chunks:
                if len(self.chunks) > 1:
                    days, where, counts = (np.concatenate(parts)
                                           for parts in zip(*self.chunks, strict=True))
                    self.chunks = [(days, where, counts)]
                days, where, counts = self.chunks[0]
                weighted = decay_weights(reference - days) * counts
                for h in range(len(HALF_LIVES_DAYS)):
                    totals[h] = np.bincount(where, weighted[h], minlength=size)
            self.totals = {reference: totals}  # one reference day kept: decisions move on
        return totals


class TrendCounts:
    """Engagement counts per event day (day → {stat field: count}), and their decayed sums
    per placement and reference day. The worker replaces days with its copy of Redis
    (`set_day`), the replay adds to them (`add`); both read `features`."""

    def __init__(self) -> None:
        self.days: dict[int, dict[str, int]] = {}
        self._pending: list[tuple[int, str, int]] = []
        self._flat: dict[str, _Flat] = {}
        self._placement_of: dict[str, str] = {}  # of each stat field met
        self._features: dict[tuple[str, int], tuple[int, TrendFeatures]] = {}
        self.version = 0

    def add(self, day: int, field: str, n: int = 1) -> None:
        per_day = self.days.setdefault(day, {})
        per_day[field] = per_day.get(field, 0) + n
        self._pending.append((day, field, n))
        self.version += 1

    def add_each(self, entries: list[tuple[int, tuple[str, ...]]]) -> None:
        """`add(day, field)` for each field of each entry, in order (the replay's reloads:
        millions of them)."""
        days, pending = self.days, self._pending
        for day, fields in entries:
            per_day = days.get(day)
            if per_day is None:
                per_day = days[day] = {}
            for field in fields:
                per_day[field] = per_day.get(field, 0) + 1
                pending.append((day, field, 1))
        if entries:
            self.version += 1

    def set_day(self, day: int, fields: dict[str, int]) -> None:
        """Make `day` hold exactly `fields` (what Redis holds for it now)."""
        old = self.days.get(day, {})
        for field, count in fields.items():
            if count != old.get(field, 0):
                self._pending.append((day, field, count - old.get(field, 0)))
        self._pending.extend((day, f, -c) for f, c in old.items() if f not in fields)
        self.days[day] = dict(fields)
        self.version += 1

    def drop_before(self, day: int) -> list[int]:
        """Forget days older than `day` (they weigh nothing any more); returns them."""
        old = [d for d in self.days if d < day]
        for d in old:
            self.set_day(d, {})
            del self.days[d]
        return old

    def features(self, candidates: PlacementCandidates, reference: int) -> TrendFeatures:
        key = (candidates.placement, reference)
        cached = self._features.get(key)
        if cached is not None and cached[0] == self.version and \
                self._flat[candidates.placement].candidates is candidates:
            return cached[1]
        flat = self._placement(candidates)
        result = trend_features(flat.at(reference), len(candidates.variants))
        if len(self._features) > 64:
            self._features.clear()
        self._features[key] = (self.version, result)
        return result

    def _placement(self, candidates: PlacementCandidates) -> _Flat:
        if self._pending:
            routed: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
            placement_of = self._placement_of
            for entry in self._pending:
                field = entry[1]
                placement = placement_of.get(field)
                if placement is None:
                    placement = placement_of[field] = field.split("|", 2)[1].split("/", 1)[0]
                routed[placement].append(entry)
            self._pending = []
            for placement, entries in routed.items():
                if placement in self._flat:
                    self._flat[placement].add(entries)
        flat = self._flat.get(candidates.placement)
        if flat is None or flat.candidates is not candidates:  # new catalog: rebuild
            flat = _Flat(candidates)
            prefix = f"|{candidates.placement}/"
            flat.add([(day, field, n) for day, fields in self.days.items()
                      for field, n in fields.items() if prefix in field])
            self._flat[candidates.placement] = flat
        return flat


def trend_features(totals: FloatArray, n_variants: int) -> TrendFeatures:
    """Decayed sums (H, cells) → the trend features of one placement's variants."""
    t = totals.reshape(len(HALF_LIVES_DAYS), len(_KINDS), _ROWS, n_variants)
    views, clicks = t[:, 0, 0], t[:, 1, 0]  # (H, V)
    share = (clicks + SHARE_PRIOR) / (clicks.sum(axis=1, keepdims=True)
                                      + SHARE_PRIOR * n_variants)
    rate = (clicks[_CTX].sum() + 1.0) / (views[_CTX].sum() + 20.0)
    ctr = (clicks[_CTX] + CTR_PRIOR_VIEWS * rate) / (views[_CTX] + CTR_PRIOR_VIEWS)
    segment_clicks = t[_CTX, 1, 1:]  # (segments, V)
    # Each segment's share leans on the overall share (a thin segment reads the overall).
    segment = np.log((segment_clicks + CTX_PRIOR_CLICKS * share[_CTX][None, :]) / (
        segment_clicks.sum(axis=1, keepdims=True) + CTX_PRIOR_CLICKS))
    return TrendFeatures(np.vstack([np.log(share), ctr[None, :]]), segment[:len(DEVICES)],
                         segment[_SOURCE_ROWS.start - 1:_SOURCE_ROWS.stop - 1],
                         np.vstack([segment[_LANGUAGE_ROWS.start - 1:],
                                    np.log(share[_CTX])[None, :]]))


def no_trend(n_variants: int) -> TrendFeatures:
    """The features of a placement nobody has engaged with yet."""
    return trend_features(np.zeros((len(HALF_LIVES_DAYS), len(_KINDS) * _ROWS * n_variants)),
                          n_variants)
