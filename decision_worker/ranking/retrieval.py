"""First stage for large placements: retrieve a few hundred candidates cheaply, rank those.

A placement with more variants than the ranker should score (`EDGEPICK_RANK_LIMIT`, 500)
is narrowed per user by one matrix-vector product: every variant has an embedding (its
category and tags, feature-hashed into `DIMENSIONS` dimensions and normalised, computed
once per catalog), the user has one (the same space, weighted by their decayed engagement
with each category), and the retrieval score is their dot product plus the variant's
smoothed popularity. `np.argpartition` then takes the top `limit` of the eligible ones,
and the default is always kept. No history: popularity alone decides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import BoolArray, FloatArray, IntArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.counters import counter_at
from decision_worker.ranking.popularity import PlacementPopularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.trending import HALF_LIVES_DAYS

DIMENSIONS = 32
POPULARITY_WEIGHT = 0.5
TREND_WEIGHT = 1.0
VIEW_WEIGHT = 0.1  # a view says a tenth of what a click says about taste
_CLICK_14D, _VIEW_14D = 4, 3  # positions in counter_at's output


def _hashed(token: str) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    return digest[0] % DIMENSIONS, (1.0 if digest[1] & 1 else -1.0)


def token_vector(tokens: list[str]) -> FloatArray:
    vector = np.zeros(DIMENSIONS)
    for token in tokens:
        slot, sign = _hashed(token)
        vector[slot] += sign
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


@dataclass
class VariantIndex:
    """Embeddings of one placement's variants (float32, (V, DIMENSIONS))."""

    embeddings: np.ndarray
    categories: list[str]

    @classmethod
    def build(cls, categories: list[str], tags: list[list[str]]) -> VariantIndex:
        rows = [token_vector([f"category:{c}"] + [f"tag:{t}" for t in tag_list])
                for c, tag_list in zip(categories, tags, strict=True)]
        return cls(np.array(rows, dtype=np.float32).reshape(len(rows), DIMENSIONS),
                   categories)


def variant_index(catalog: Catalog, placement: str) -> VariantIndex:
    """The embeddings of a placement's variants, built on first use and kept with the
    catalog (so a new manifest gets new ones)."""
    key = f"retrieval/{placement}"
    index = catalog.caches.get(key)
    if not isinstance(index, VariantIndex):
        candidates = catalog.placements[placement]
        index = VariantIndex.build([catalog.category_of[k] for k in candidates.keys],
                                   catalog.tags.get(placement, []))
        catalog.caches[key] = index
    return index


def user_vector(profile: Profile, as_of: float) -> np.ndarray:
    vector = np.zeros(DIMENSIONS)
    for category, counter in profile.categories.items():
        values = counter_at(counter, as_of)
        weight = values[_CLICK_14D] + VIEW_WEIGHT * values[_VIEW_14D]
        if weight:
            vector += weight * token_vector([f"category:{category}"])
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


def retrieve(index: VariantIndex, user: np.ndarray, popularity: PlacementPopularity,
             eligible: BoolArray, candidates: PlacementCandidates, limit: int,
             day: int | None = None) -> IntArray:
    """Indices of at most `limit` eligible variants to rank (the default among them).
    With the decision's event `day`, what trends (the longest half-life's log share of
    decayed clicks, trending.py) counts as well: it is what finds most of what users like."""
    scores = index.embeddings @ user + POPULARITY_WEIGHT * np.log(popularity.ctr).astype(
        np.float32)
    if day is not None and popularity.trend_at is not None:
        scores = scores + TREND_WEIGHT * popularity.trend_at(day).overall[
            len(HALF_LIVES_DAYS) - 1].astype(np.float32)
    scores = np.where(eligible, scores, -np.inf)
    available = int(eligible.sum())
    if available <= limit:
        picked = np.flatnonzero(eligible)
    else:
        picked = np.argpartition(-scores, limit - 1)[:limit]
    if candidates.default_index not in picked:
        picked = np.append(picked[:limit - 1], candidates.default_index)
    return np.sort(picked).astype(np.int64)
