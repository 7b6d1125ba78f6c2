"""Scoring behind a small interface: a ranker turns feature rows into scores, nothing else.

The worker builds the rows (features.py), asks the ranker for one score per row, for the
whole batch in one call, and sorts. The learned LightGBM ranker (lgbm_ranker.py) implements the
same interface; `BaselineRanker` is the transparent one it has to beat.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.features import COLUMN, FEATURES
from decision_worker.ranking.trait_columns import TraitColumn


class Ranker(Protocol):
    version: str  # written into every decision record; an identifier ([a-z0-9_-])
    features: tuple[str, ...]  # the rows' layout: FEATURES, then the trait columns
    traits: tuple[TraitColumn, ...]  # the trait columns the rows must carry

    def score(self, rows: FloatArray) -> FloatArray:
        """(N, len(features)) rows → (N,) scores; higher is better."""
        ...


class BaselineRanker:
    """What is trending among users on the same device class (the variant's share of the
    last month's decayed clicks, trending.py), times the user's affinity for the variant's
    category (1 with no history). A user with no history is thus ranked by trending in
    their context: the cold-start prior a site would use without edgepick."""

    version: str = "baseline-2"
    features: tuple[str, ...] = FEATURES
    traits: tuple[TraitColumn, ...] = ()

    def score(self, rows: FloatArray) -> FloatArray:
        return rows[:, COLUMN["ctx_trend_30d"]] + np.log(rows[:, COLUMN["c_affinity"]])
