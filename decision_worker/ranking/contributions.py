"""Why a variant came first: the features that moved its score, computed on read from the
why-record's feature row (the worker stores the row and never computes this: why_record.py).

- A LightGBM model (the decision's model version, loaded from the registry on first use and
  kept): `Booster.predict(row, pred_contrib=True)`, one SHAP value per feature (TreeSHAP:
  they and the expected value add up to the raw score), the `TOP` largest by absolute value.
  A user with no history was ranked by trending, not by the trees (lgbm_ranker.py): the
  one column that then was the score.
- The baseline ranker: its score is the sum of two terms (ranker.py), what trends on the
  user's device class and the log of the user's affinity for the category: those two.
- A holdout decision (the default, by rule), a pinned one, or one whose model is gone from
  the registry: none, and `method` says why.

Loading a model costs a registry read and a parse (tens of milliseconds to seconds for big
models), so it happens once per version, off the event loop (callers use a thread), and at
most `CACHED_MODELS` versions are kept.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from decision_worker.errors import ModelError, RegistryError
from decision_worker.ranking.feature_spec import FeatureSpec
from decision_worker.ranking.features import COLUMN, FEATURES, SEGMENT_TRENDS
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.why_record import WhyRecord

TOP = 5
CACHED_MODELS = 4


@dataclass(frozen=True)
class Explanation:
    contributions: dict[str, float] | None  # feature → its share of the score, largest first
    method: str  # how they were computed, or why there are none


@dataclass(frozen=True)
class _Model:
    booster: Any  # lightgbm.Booster
    spec: FeatureSpec  # the worker's row (`row_features`) → the model's `columns`
    cold_start_column: str | None  # the trending column new users are ranked by
    cold_start_below: int  # ... when they engaged with fewer variants than this
    cold_start_context: bool = False  # ... or by what trends in their context

    @property
    def features(self) -> tuple[str, ...]:
        return self.spec.row_features


class Explainer:
    """Contributions for decisions, loading each model version from the registry once."""

    def __init__(self, registry: ModelRegistry | None) -> None:
        self._registry = registry
        self._models: OrderedDict[str, _Model] = OrderedDict()
        self._lock = threading.Lock()  # one load per version, whatever the threads

    def explain(self, model_version: str, arm: str, why: WhyRecord | None) -> Explanation:
        if why is None:
            return Explanation(None, "no why-record (a pinned decision, or one written "
                                     "before why-records existed)")
        if not why.features:
            return Explanation(None, f"arm {arm}: the default by rule, nothing was scored")
        if model_version == BaselineRanker.version:
            return Explanation(_baseline_terms(why.features), "baseline ranker's terms")
        try:
            model = self._model(model_version)
        except (ModelError, RegistryError) as e:
            return Explanation(None, f"model not available: {e}")
        if len(why.features) != len(model.features):
            return Explanation(None, f"the stored row has {len(why.features)} features, "
                                     f"model {model_version} {len(model.features)}")
        row = np.asarray(why.features, dtype=np.float64)
        column = model.cold_start_column
        # u_history is log1p(a count), stored as float32: compared as the count it codes
        if column in model.features and "u_history" in model.features \
                and np.rint(np.expm1(row[model.features.index("u_history")])) < \
                model.cold_start_below:
            if model.cold_start_context:
                return Explanation(_context_terms(row), "cold start: a user with little "
                                   "history is ranked by what trends in their context")
            return Explanation({column: _round(row[model.features.index(column)])},
                               "cold start: a user with little history is ranked by trending")
        columns = model.spec.model_rows(row[None, :])
        values = np.asarray(model.booster.predict(columns, pred_contrib=True,
                                                  num_threads=1))[0, :-1]
        return Explanation(_top(model.spec.columns, values), "lightgbm pred_contrib (SHAP)")

    def _model(self, version: str) -> _Model:
        with self._lock:
            if version in self._models:
                self._models.move_to_end(version)
                return self._models[version]
            if self._registry is None:
                raise ModelError(f"model {version}: no registry to load it from")
            text, card = self._registry.load(version)
            import lightgbm as lgb  # only when a learned model is explained

            try:
                booster = lgb.Booster(model_str=text)
            except lgb.basic.LightGBMError as e:
                raise ModelError(f"model {version} does not load: {e}") from e
            cold_start = card.get("cold_start") or {}
            half_life = cold_start.get("half_life_days")
            model = _Model(booster, FeatureSpec.from_card(card, version),
                           None if half_life is None else f"trend_{half_life}d",
                           int(cold_start.get("below_history", 1)),
                           bool(cold_start.get("context", False)))
            self._models[version] = model
            while len(self._models) > CACHED_MODELS:
                self._models.popitem(last=False)
            return model


def _context_terms(row: np.ndarray) -> dict[str, float] | None:
    """features.context_trend's terms: the overall 30-day trend, then each segment's lift
    over it (they add up to the score)."""
    overall = row[COLUMN["trend_30d"]]
    return _top(("trend_30d", *SEGMENT_TRENDS),
                np.array([overall, *(row[COLUMN[c]] - overall for c in SEGMENT_TRENDS)]))


def _baseline_terms(features: tuple[float, ...]) -> dict[str, float] | None:
    """ranker.py's two terms (the affinity is a smoothed ratio: always positive)."""
    affinity = features[COLUMN["c_affinity"]] if len(features) == len(FEATURES) else 0.0
    if affinity <= 0:
        return None
    return _top(("ctx_trend_30d", "c_affinity"),
                np.array([features[COLUMN["ctx_trend_30d"]], math.log(affinity)]))


def _top(names: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    """The `TOP` values largest in absolute value, largest first (ties: feature order)."""
    order = np.argsort(-np.abs(values), kind="stable")[:TOP]
    return {names[i]: _round(values[i]) for i in order}


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")
