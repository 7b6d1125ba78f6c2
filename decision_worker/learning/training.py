"""Training the learned ranker: LightGBM `lambdarank` on replayed examples (the worker
scores the result through ranking/lgbm_ranker.py).

Position bias: LightGBM's position-aware lambdarank (Unbiased LambdaMART, LightGBM ≥ 4.1):
the logged position of every row goes into the Dataset and LightGBM learns one bias factor
per position alongside the trees, so a click in slot 0 counts for less than a click in
slot 2. Chosen over inverse propensity weights because it needs no separately estimated
propensities (a randomisation experiment we do not have) and the bias is fitted on the
same data. Scoring never sees the position: the worker ranks for the top slot.
Categorical columns (context signals, declared traits: feature_fit.py) are LightGBM
categoricals; no normalisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from decision_worker.errors import ModelError
from decision_worker.learning.examples import Examples
from decision_worker.learning.feature_config import DEFAULT_FEATURES, FeatureConfig
from decision_worker.learning.feature_fit import fit_spec, trait_rows
from decision_worker.ranking.arrays import FloatArray
from decision_worker.ranking.feature_spec import FeatureSpec

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [1, 3, 5],
    # Chosen on the synthetic test bed (4,000 users × 30 slates): lr 0.1 / 31 leaves stopped
    # after 3 rounds at NDCG@1 0.548; lr 0.05 / 15 leaves / 100 per leaf reached 0.574.
    "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 100,
    "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1,
    "lambdarank_truncation_level": 10, "num_threads": 2, "seed": 7, "deterministic": True,
    "force_row_wise": True, "verbosity": -1,
}
log = logging.getLogger("edgepick.model")
MAX_ROUNDS = 200
EARLY_STOPPING = 20


@dataclass
class TrainedModel:
    booster: lgb.Booster
    rounds: int
    params: dict[str, Any]
    spec: FeatureSpec
    valid_ndcg: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # column → why it is not read

    def model_text(self) -> str:
        return str(self.booster.model_to_string(num_iteration=self.rounds))


def train(train_set: Examples, valid_set: Examples, params: dict[str, Any] | None = None,
          position_debiasing: bool = True,
          early_stopping: int | None = EARLY_STOPPING,
          features: FeatureConfig = DEFAULT_FEATURES) -> TrainedModel:
    """Fit on `train_set`, early-stopping on `valid_set` (a later time window), reading
    the columns `features` declares that vary in `train_set` (feature_fit.py).
    `position_debiasing=False` exists to show what the debiasing prevents (tests)."""
    if train_set.groups == 0:
        raise ModelError("no training groups with a click: nothing to learn from")
    if valid_set.groups == 0:
        raise ModelError("no validation groups with a click: cannot stop early honestly")
    merged = {**DEFAULT_PARAMS, **(params or {})}
    spec, dropped = fit_spec(features, train_set)
    categorical = [spec.columns.index(c) for c in spec.categorical]
    x, label, position = model_matrix(train_set, spec, 1)
    dtrain = lgb.Dataset(x, label, group=train_set.group_sizes,
                         position=position if position_debiasing else None,
                         feature_name=list(spec.columns),
                         categorical_feature=categorical, free_raw_data=False)
    x, label, _ = model_matrix(valid_set, spec, 2)
    dvalid = lgb.Dataset(x, label, group=valid_set.group_sizes, reference=dtrain,
                         categorical_feature=categorical)
    evals: dict[str, Any] = {}
    booster = lgb.train(merged, dtrain, num_boost_round=int(merged.pop("num_boost_round",
                                                                       MAX_ROUNDS)),
                        valid_sets=[dvalid], valid_names=["valid"],
                        callbacks=[lgb.record_evaluation(evals)] + (
                            [lgb.early_stopping(early_stopping, verbose=False)]
                            if early_stopping else []))
    rounds = (booster.best_iteration if early_stopping else 0) or booster.current_iteration()
    valid = {name: float(values[rounds - 1]) for name, values in evals["valid"].items()}
    return TrainedModel(booster, rounds, merged, spec, valid, dropped)


def model_matrix(examples: Examples, spec: FeatureSpec,
                 seed: int) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """The model's rows of `examples` with their labels and positions, rows shuffled within
    each group (Examples.shuffled says why), shuffled column by column in place: no copy of
    the whole base matrix (training's peak memory)."""
    order = examples.shuffle_order(seed)
    x = spec.model_rows(examples.x, trait_rows(examples, spec.traits))
    for j in range(x.shape[1]):
        x[:, j] = x[order, j]
    return x, examples.label[order], examples.position[order]
