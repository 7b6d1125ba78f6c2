"""First stage for large placements: retrieve a few hundred candidates cheaply, rank those.

A placement with more variants than the ranker should score (`EDGEPICK_RANK_LIMIT`, 500)
is narrowed per user by one matrix-vector product: every variant has an embedding and so
has the user (embeddings.py), and the retrieval score is their dot product plus the
variant's smoothed popularity and what trends. `np.argpartition` then takes the top
`limit` of the eligible ones, and the default is always kept (as one of them when
eligible). No history: popularity and trending alone decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from decision_worker.ranking.arrays import BoolArray, IntArray
from decision_worker.ranking.candidates import Catalog, PlacementCandidates
from decision_worker.ranking.popularity import PlacementPopularity
from decision_worker.ranking.trending import HALF_LIVES_DAYS

POPULARITY_WEIGHT = 0.5
TREND_WEIGHT = 1.0


@dataclass
class VariantIndex:
    """Embeddings of one placement's variants (float32, (V, DIMENSIONS), embeddings.py)."""

    embeddings: np.ndarray


def variant_index(catalog: Catalog, placement: str) -> VariantIndex:
    """A placement's embeddings (computed once with the catalog)."""
    return VariantIndex(catalog.placements[placement].embeddings)


def retrieve(index: VariantIndex, user: np.ndarray, popularity: PlacementPopularity,
             eligible: BoolArray, candidates: PlacementCandidates, limit: int,
             day: int | None = None) -> IntArray:
    """Indices of the variants to rank: at most `limit` eligible ones, and the default (its
    row is always built; it takes one of the `limit` only when this user may be shown it).
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
    default = candidates.default_index
    if default not in picked:
        picked = np.append(picked[:limit - 1] if eligible[default] else picked, default)
    return np.sort(picked).astype(np.int64)
