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


class Ranker(Protocol):
    version: str  # written into every decision record; an identifier ([a-z0-9_-])
    features: tuple[str, ...]  # the feature spec the ranker was built for

    def score(self, rows: FloatArray) -> FloatArray:
        """(N, len(features)) rows → (N,) scores; higher is better."""
        ...


class BaselineRanker:
    """Expected click-through for this user: the variant's click-through among users on the
    same device class (smoothed towards its overall rate, itself smoothed towards the
    placement's), times the user's affinity for the variant's category (1 with no history).
    A user with no history is thus ranked by context and popularity alone."""

    version: str = "baseline-1"
    features: tuple[str, ...] = FEATURES

    def score(self, rows: FloatArray) -> FloatArray:
        return np.log(rows[:, COLUMN["ctx_ctr"]]) + np.log(rows[:, COLUMN["c_affinity"]])
