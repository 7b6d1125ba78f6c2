"""The feature matrix: one row per (user, candidate variant), the same columns online and in
training. `FEATURES` is the spec a model is trained against; its order is the contract.

Built for a whole batch at once: the user-level parts once per user, the candidate-level
parts once per placement, and the (user × candidate) parts by indexing arrays, so scoring
a batch is a handful of numpy operations rather than a Python loop per row.

A row is `FEATURES` followed by the trait columns the ranker asked for (trait_columns.py,
user-level like the context: computed once per user in `user_batch`). Which of them a
learned model reads, and how it codes the categorical ones, is its spec (feature_spec.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decision_worker.ranking import seen_archive
from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.context import DEVICES, SOURCES, TREND_LANGUAGES
from decision_worker.ranking.counters import KINDS, counter_at
from decision_worker.ranking.embeddings import VIEW_WEIGHT
from decision_worker.ranking.popularity import PlacementPopularity, Popularity
from decision_worker.ranking.profile import Profile, language_of
from decision_worker.ranking.seen_counts import BITS, MASK
from decision_worker.ranking.trait_columns import TraitColumn, trait_matrix
from decision_worker.ranking.trending import (
    TREND_FEATURES,
    TrendFeatures,
    event_day,
    no_trend,
)

FEATURES: tuple[str, ...] = (
    "u_sessions",  # log1p(sessions)
    "u_days_known",  # days since first seen
    "u_hours_since_session",  # hours since the previous session started (capped at 30 days)
    "u_views_14d", "u_clicks_14d", "u_ctr_14d",  # all engagement, decayed, smoothed rate
    "c_views_1d", "c_clicks_1d",  # the candidate's category, for this user
    "c_views_14d", "c_clicks_14d", "c_conversions_14d",
    "c_affinity",  # the user's smoothed click rate in the category / their overall rate
    "v_views_14d", "v_clicks_14d",  # this very variant, for this user (fatigue, loyalty)
    "pop_ctr", "pop_log_views",  # everyone's engagement with the variant
    "ctx_ctr",  # everyone on the same device class
    *TREND_FEATURES,  # decayed by event day (trending.py): log click shares, click-through
    "ctx_trend_30d",  # log share of decayed clicks among users of the same device class
    "ctx_source_trend_30d",  # … of the same traffic source (search, email, campaign…)
    "ctx_language_trend_30d",  # … of the same language (the overall share outside TREND_LANGUAGES)
    "taste_similarity",  # the variant's content embedding · the user's taste (below)
    "u_history",  # log1p(variants the user engaged with, seen + archived): 0 = new user
    "is_default",
    "device", "hour", "source",  # categorical: indices into DEVICES, 0-23 (24 unknown), SOURCES
    "locale_match",  # 1 when the variant targets the user's language
    "v_category",  # categorical: the variant's category, by name code (name_codes.py)
)
CATEGORICAL = ("device", "hour", "source", "v_category")
# Categorical columns without a fixed vocabulary: a model reads them only through the
# categories its card lists (feature_spec.py); models from before feature specs never did.
NAME_CODED = ("v_category",)
# How the categorical columns are encoded: stored in every model card and checked at load,
# so a model never reads indices that meant something else when it was trained.
ENCODINGS: dict[str, list[str]] = {
    "device": list(DEVICES), "source": list(SOURCES),
    "hour": [str(h) for h in range(24)] + ["unknown"]}
COLUMN = {name: i for i, name in enumerate(FEATURES)}
USER_PRIOR = (1.0, 20.0)  # (clicks, views) behind a user's own click-through
AFFINITY_PRIOR_VIEWS = 3.0
MAX_GAP_HOURS = 30 * 24.0
UNKNOWN_HOUR = 24  # a category of its own (LightGBM turns negative categories into NaN)
_VIEW, _CLICK, _CONV = (KINDS.index(k) for k in ("view", "click", "conversion"))
_LONG = len(KINDS)  # offset of the 14-day window in counter_at's output


@dataclass
class UserBatch:
    """The user-level inputs of a batch, computed once and shared by every placement."""

    profiles: list[Profile]
    as_of: FloatArray  # (B,)
    user: FloatArray  # (B, 6) the u_* columns
    categories: FloatArray  # (B, C, 6) category counters decayed to as_of
    device: FloatArray  # (B,)
    hour: FloatArray
    source: FloatArray
    languages: list[str | None]
    # When schedules are checked: the worker's clock, not the (client-stated) event time, so
    # a client cannot reach into a schedule window early. Defaults to as_of.
    clock: FloatArray | None = None
    traits: FloatArray | None = None  # (B, T) the ranker's trait columns; None: none


def one_user(users: UserBatch, u: int) -> UserBatch:
    return UserBatch([users.profiles[u]], users.as_of[u:u + 1], users.user[u:u + 1],
                     users.categories[u:u + 1], users.device[u:u + 1], users.hour[u:u + 1],
                     users.source[u:u + 1], [users.languages[u]],
                     None if users.clock is None else users.clock[u:u + 1],
                     None if users.traits is None else users.traits[u:u + 1])


def schedule_clock(users: UserBatch) -> FloatArray:
    return users.as_of if users.clock is None else users.clock


def user_batch(profiles: list[Profile], as_of: list[float], catalog: Catalog,
               clock: list[float] | None = None,
               traits: tuple[TraitColumn, ...] = ()) -> UserBatch:
    """The user-level inputs; `traits`: the trait columns the rows are to carry (the
    ranker's, `Ranker.traits`)."""
    n, categories = len(profiles), {c: i for i, c in enumerate(catalog.categories)}
    user, contexts = [], []
    cats = np.zeros((n, max(1, len(categories)), 6))
    owner, where, decayed = [], [], []  # gathered, then written in one numpy assignment
    for u, (profile, at) in enumerate(zip(profiles, as_of, strict=True)):
        total = counter_at(profile.total, at)
        views, clicks = total[_LONG + _VIEW], total[_LONG + _CLICK]
        gap = (at - profile.last_session) / 3600 if profile.last_session else MAX_GAP_HOURS
        user.append((profile.sessions,  # log1p'd below, for the whole batch
                     (at - profile.first_seen) / 86_400 if profile.first_seen else 0.0,
                     min(max(gap, 0.0), MAX_GAP_HOURS), views, clicks,
                     (clicks + USER_PRIOR[0]) / (views + USER_PRIOR[1])))
        for category, counter in profile.categories.items():
            c = categories.get(category)
            if c is not None:
                owner.append(u)
                where.append(c)
                decayed.append(counter_at(counter, at))
        context = profile.context
        contexts.append((DEVICES.index(context.get("device", "unknown")),
                         context.get("hour", UNKNOWN_HOUR),
                         SOURCES.index(context.get("source", "direct"))))
    if decayed:
        cats[owner, where] = decayed
    device, hour, source = np.array(contexts, dtype=np.float64).reshape(n, 3).T
    rows = np.array(user, dtype=np.float64).reshape(n, 6)
    rows[:, 0] = np.log1p(rows[:, 0])
    return UserBatch(profiles, np.asarray(as_of, dtype=np.float64), rows, cats, device, hour,
                     source, [language_of(p) for p in profiles],
                     None if clock is None else np.asarray(clock, dtype=np.float64),
                     trait_matrix([p.traits for p in profiles], traits) if traits else None)


_TREND = slice(COLUMN[TREND_FEATURES[0]], COLUMN[TREND_FEATURES[-1]] + 1)
SEGMENT_TRENDS = ("ctx_trend_30d", "ctx_source_trend_30d", "ctx_language_trend_30d")


def context_trend(rows: FloatArray) -> FloatArray:
    """(N, len(FEATURES)) rows → what trends in each user's context: the overall 30-day
    log share plus each segment's lift over it (device class, source, language), taken as
    independent. A segment without clicks of its own adds nothing (its share is the
    overall one)."""
    overall = rows[:, COLUMN["trend_30d"]]
    lifts = rows[:, [COLUMN[c] for c in SEGMENT_TRENDS]] - overall[:, None]
    result: FloatArray = overall + lifts.sum(axis=1)
    return result
_LANGUAGE_ROW = {language: i for i, language in enumerate(TREND_LANGUAGES)}


def _trend_columns(x: FloatArray, users: UserBatch, snapshots: list[PlacementPopularity],
                   of_user: IntArray, n_variants: int) -> None:
    """The trend columns, each user's read from their snapshot at their own reference day
    (usually one per snapshot): each (snapshot, day) resolved once, then gathered."""
    which: dict[tuple[int, int], int] = {}
    trends: list[TrendFeatures] = []
    row = np.empty(len(of_user), dtype=np.int64)
    for u, (s, at) in enumerate(zip(of_user.tolist(), users.as_of.tolist(), strict=True)):
        key = (s, event_day(at))
        k = which.get(key)
        if k is None:
            k = which[key] = len(trends)
            trend_at = snapshots[s].trend_at
            trends.append(trend_at(key[1]) if trend_at is not None else no_trend(n_variants))
        row[u] = k
    device, source = users.device.astype(np.int64), users.source.astype(np.int64)
    language = np.array([_LANGUAGE_ROW.get(x or "", len(TREND_LANGUAGES))
                         for x in users.languages], dtype=np.int64)
    x[:, :, _TREND] = np.stack([t.overall.T for t in trends])[row]
    x[:, :, COLUMN["ctx_trend_30d"]] = np.stack([t.device for t in trends])[row, device]
    x[:, :, COLUMN["ctx_source_trend_30d"]] = np.stack([t.source for t in trends])[row, source]
    x[:, :, COLUMN["ctx_language_trend_30d"]] = np.stack(
        [t.language for t in trends])[row, language]


def _popularity_columns(x: FloatArray, users: UserBatch, candidates: PlacementCandidates,
                        popularity: Popularity | PlacementPopularity | list[PlacementPopularity]
                        ) -> None:
    """Everyone's engagement with each variant: one snapshot for the whole batch (the
    worker), or one per user (the replay, whose batch gathers moments of different times,
    hundreds of snapshots: each is stacked once and its users' rows gathered from it)."""
    snapshots: list[PlacementPopularity]
    if isinstance(popularity, list):
        snapshots = list({id(own): own for own in popularity}.values())
        index = {id(own): i for i, own in enumerate(snapshots)}
        of_user = np.array([index[id(own)] for own in popularity], dtype=np.int64)
    else:
        snapshots = [popularity.for_placement(candidates)
                     if isinstance(popularity, Popularity) else popularity]
        of_user = np.zeros(len(users.profiles), dtype=np.int64)
    device = users.device.astype(np.int64)
    x[:, :, COLUMN["pop_ctr"]] = np.stack([p.ctr for p in snapshots])[of_user]
    x[:, :, COLUMN["pop_log_views"]] = np.log1p(np.stack([p.views for p in snapshots]))[of_user]
    x[:, :, COLUMN["ctx_ctr"]] = np.stack([p.device_ctr for p in snapshots])[of_user, device]
    _trend_columns(x, users, snapshots, of_user, len(candidates.variants))


def taste_similarity(profiles: list[Profile], candidates: PlacementCandidates) -> FloatArray:
    """(users, variants): cosine of each variant's content embedding with the user's taste,
    the sum of the embeddings of the variants they engaged with in this placement (plain
    counts of `Profile.seen`, which do not decay: a user back after months still has one;
    a click weighs ten views). 0 for a user with none."""
    key_index, embeddings = candidates.content or (candidates.key_index,
                                                   candidates.embeddings)
    taste = np.zeros((len(profiles), embeddings.shape[1]), dtype=np.float32)
    sizes = [len(p.seen) for p in profiles]
    total = sum(sizes)
    if total:  # the whole batch at once: per-user numpy calls were a tenth of the worker
        get = key_index.get
        rows = np.fromiter((get(k, -1) for p in profiles for k in p.seen), np.int64, total)
        packed = np.fromiter((c for p in profiles for c in p.seen.values()), np.int64, total)
        owner = np.repeat(np.arange(len(profiles)), sizes)
        mine = rows >= 0
        rows, packed, owner = rows[mine], packed[mine], owner[mine]
        if len(rows):
            views, clicks = packed & MASK, (packed >> BITS) & MASK
            weights = (clicks + (packed >> (2 * BITS)) + VIEW_WEIGHT * views).astype(
                np.float32)
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
            taste[owner[starts]] = np.add.reduceat(weights[:, None] * embeddings[rows],
                                                   starts, axis=0)
    norms = np.linalg.norm(taste, axis=1, keepdims=True)
    taste = np.where(norms > 0, taste / np.maximum(norms, 1e-12), 0.0)
    similarity: FloatArray = (taste @ candidates.embeddings.T).astype(np.float64)
    return similarity


def placement_matrix(users: UserBatch, candidates: PlacementCandidates,
                     popularity: Popularity | PlacementPopularity | list[PlacementPopularity]
                     ) -> tuple[FloatArray, BoolArray]:
    """(B, V, F + T) features and the (B, V) eligibility mask for one placement (or for the
    candidates retrieval kept, with the matching slice of the placement's popularity).
    `popularity` may also be one snapshot per user (the offline replay's batches)."""
    n, v = len(users.profiles), len(candidates.variants)
    traits = 0 if users.traits is None else users.traits.shape[1]
    x = np.empty((n, v, len(FEATURES) + traits))
    if users.traits is not None:
        x[:, :, len(FEATURES):] = users.traits[:, None, :]
    x[:, :, 0:6] = users.user[:, None, :]
    cat = users.categories[:, candidates.category_index, :]  # (B, V, 6)
    x[:, :, COLUMN["c_views_1d"]] = cat[:, :, _VIEW]
    x[:, :, COLUMN["c_clicks_1d"]] = cat[:, :, _CLICK]
    x[:, :, COLUMN["c_views_14d"]] = cat[:, :, _LONG + _VIEW]
    x[:, :, COLUMN["c_clicks_14d"]] = cat[:, :, _LONG + _CLICK]
    x[:, :, COLUMN["c_conversions_14d"]] = cat[:, :, _LONG + _CONV]
    user_ctr = users.user[:, 5:6]
    x[:, :, COLUMN["c_affinity"]] = (
        (cat[:, :, _LONG + _CLICK] + AFFINITY_PRIOR_VIEWS * user_ctr)
        / (cat[:, :, _LONG + _VIEW] + AFFINITY_PRIOR_VIEWS)) / user_ctr
    per_variant = np.zeros((n, v, 2))
    index = candidates.key_index
    owner, where, counts = [], [], []  # gathered, then written in one numpy assignment
    for u, (profile, at) in enumerate(zip(users.profiles, users.as_of.tolist(), strict=True)):
        for key, counter in profile.variants.items():
            i = index.get(key)  # only this placement's variants are decayed
            if i is not None:
                values = counter_at(counter, at)
                owner.append(u)
                where.append(i)
                counts.append((values[_LONG + _VIEW], values[_LONG + _CLICK]))
    if counts:
        per_variant[owner, where] = counts
    x[:, :, COLUMN["v_views_14d"]] = per_variant[:, :, 0]
    x[:, :, COLUMN["v_clicks_14d"]] = per_variant[:, :, 1]
    _popularity_columns(x, users, candidates, popularity)
    x[:, :, COLUMN["taste_similarity"]] = taste_similarity(users.profiles, candidates)
    x[:, :, COLUMN["u_history"]] = np.log1p([len(p.seen) + seen_archive.size(p.seen_archive)
                                                for p in users.profiles])[:, None]
    x[:, :, COLUMN["is_default"]] = candidates.is_default[None, :]
    x[:, :, COLUMN["device"]] = users.device[:, None]
    x[:, :, COLUMN["hour"]] = users.hour[:, None]
    x[:, :, COLUMN["source"]] = users.source[:, None]
    x[:, :, COLUMN["locale_match"]] = candidates.locale_match(users.languages)
    x[:, :, COLUMN["v_category"]] = candidates.category_codes[None, :]
    excluded = candidates.excluded(users.profiles)
    return x, candidates.eligible(schedule_clock(users), users.languages, excluded)
