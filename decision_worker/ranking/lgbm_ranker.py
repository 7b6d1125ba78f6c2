"""The learned ranker as the worker scores with it: a registered LightGBM model behind the
`Ranker` interface (training is learning/training.py, which the worker never imports).

The model card's feature spec (feature_spec.py) says which columns the model reads and how
its categorical ones (context signals, declared traits) are coded; the worker builds rows
with the spec's trait columns and the spec turns them into the model's columns. A spec this
worker cannot build (another base feature set, an encoding without a code for one of its
categories) is refused at load. No normalisation is applied (trees do not need it).
Scoring never sees a position: the worker ranks for the top slot.

Cold start: a user with less history than the card's `cold_start.below_history` engaged
variants (1 by default: none at all) is ranked by trending, at the half-life training chose
on its validation window (or, when the card says `context`, by what trends in the user's
context: features.context_trend), not by the trees: on MovieLens the trees, fitted mostly to
returning users' sessions, ranked new users below plain trending (session NDCG@5 0.395
against 0.432). Training chooses the threshold on its validation window
(learning/cold_start.py); the evaluation and promotion score the candidate with it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from decision_worker.errors import ModelError
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.feature_spec import FeatureSpec
from decision_worker.ranking.features import COLUMN, context_trend
from decision_worker.ranking.trait_columns import TraitColumn

log = logging.getLogger("edgepick.model")


class LightGBMRanker:
    """A registered model as the worker's ranker; refuses a spec the worker cannot build."""

    def __init__(self, version: str, model_text: str, spec: FeatureSpec | None = None,
                 cold_start_half_life: int | None = None, cold_start_below: int = 1,
                 cold_start_context: bool = False) -> None:
        """`spec` None: a model of every base feature (FeatureSpec.legacy)."""
        self.spec = spec or FeatureSpec.legacy()
        try:
            self.booster = lgb.Booster(model_str=model_text)
        except lgb.basic.LightGBMError as e:
            raise ModelError(f"model {version} does not load: {e}") from e
        if self.booster.num_feature() != len(self.spec.columns):
            raise ModelError(f"model {version} expects {self.booster.num_feature()} features, "
                             f"its card lists {len(self.spec.columns)} columns")
        self.version = version
        self.features: tuple[str, ...] = self.spec.row_features
        self.traits: tuple[TraitColumn, ...] = self.spec.traits
        self.sha256 = hashlib.sha256(model_text.encode()).hexdigest()
        self.compiled: Any = None
        # The worker's batches are small: a thread's start-up costs more than it saves.
        # Training's evaluation scores millions of rows and sets more (pipeline.py).
        self.threads = 1
        self._model_text = model_text
        self.cold_start_column: int | None = None
        self.cold_start_below = cold_start_below
        self.cold_start_context = cold_start_context
        if cold_start_half_life is not None:
            name = f"trend_{cold_start_half_life}d"
            if name not in COLUMN:
                raise ModelError(f"model {version}: no trending column {name} for cold start")
            self.cold_start_column = COLUMN[name]

    @classmethod
    def from_card(cls, version: str, model_text: str, card: dict[str, Any]) -> LightGBMRanker:
        """A registered model as its card describes it (spec, encodings, cold start)."""
        cold_start = card.get("cold_start") or {}
        return cls(version, model_text, FeatureSpec.from_card(card, version),
                   cold_start.get("half_life_days"), int(cold_start.get("below_history", 1)),
                   bool(cold_start.get("context", False)))

    def cold_start_card(self, half_life_days: int) -> dict[str, Any]:
        """The card's `cold_start`, as `from_card` reads it back."""
        return {"half_life_days": half_life_days, "below_history": self.cold_start_below,
                "context": self.cold_start_context}

    def compile(self, cache_dir: Path) -> bool:
        """Switch to lleaves' compiled predictor if it reproduces LightGBM's predictions."""
        from decision_worker.ranking.compiled import compile_model, probe_rows, same_predictions

        compiled = compile_model(self._model_text, self.sha256, cache_dir)
        if compiled is None:
            return False
        rows = self.spec.model_rows(probe_rows(self.traits))
        rng = np.random.default_rng(5)  # every code of every categorical column, too
        for j, column in enumerate(self.spec.columns):
            if column in self.spec.encodings:
                rows[::2, j] = rng.integers(0, len(self.spec.encodings[column]), len(rows[::2]))
        if not same_predictions(compiled, self._predict_lightgbm(rows), rows):
            log.warning("model %s: compiled predictions differ from LightGBM's; not used",
                        self.version)
            return False
        self.compiled = compiled
        return True

    def score(self, rows: FloatArray) -> FloatArray:
        columns = self.spec.model_rows(rows)
        if self.compiled is not None:
            scores = np.asarray(self.compiled.predict(columns, n_jobs=self.threads),
                                dtype=np.float64)
        else:
            scores = self._predict_lightgbm(columns)
        if self.cold_start_column is not None:  # little history: what trends (module doc)
            new = rows[:, COLUMN["u_history"]] < np.log1p(self.cold_start_below) - 1e-9
            scores[new] = context_trend(rows[new]) if self.cold_start_context \
                else rows[new, self.cold_start_column]
        return scores

    def _predict_lightgbm(self, rows: FloatArray) -> FloatArray:
        return np.asarray(self.booster.predict(rows, num_threads=self.threads),
                          dtype=np.float64)
