"""What the experiment tests share: a small treatment model that prefers any variant to the
default (so its decisions are told apart from the baseline's, which puts the default first
for a user with no history), registered on the test's origin, and experiments written to
Redis as the rollout controller writes them."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
from redis import Redis

from decision_worker.keys import EXPERIMENTS
from decision_worker.learning.registry import Registry
from decision_worker.ranking.compiled import probe_rows
from decision_worker.ranking.experiment import Experiment, arm_of, bucket_of
from decision_worker.ranking.feature_spec import FeatureSpec
from decision_worker.ranking.features import COLUMN
from edge_functions.bucketing import in_holdout
from edge_functions.keys import user_tag
from object_store.folder import FolderStore

TREATMENT_MODEL = "lgbm-treat"


def no_default_model() -> str:
    spec = FeatureSpec.legacy()
    raw = np.vstack([probe_rows(seed=s) for s in range(4)])
    labels = (raw[:, COLUMN["is_default"]] < 0.5).astype(int)
    data = lgb.Dataset(spec.model_rows(raw), labels, feature_name=list(spec.columns),
                       categorical_feature=[spec.columns.index(c) for c in spec.categorical])
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbosity": -1,
                         "num_threads": 1}, data, 5)
    return str(booster.model_to_string())


def register(origin: Path, version: str = TREATMENT_MODEL) -> Registry:
    registry = Registry(FolderStore(origin))
    registry.register(version, no_default_model(),
                      {"features": list(FeatureSpec.legacy().columns)})
    return registry


def experiment(step_index: int = 0, status: str = "ramping", **fields: object) -> Experiment:
    doc: dict[str, object] = {"id": "exp-a", "treatment_model": TREATMENT_MODEL,
                              "control_model": None, "placements": ("hero",),
                              "status": status, "step_index": step_index}
    return Experiment(**{**doc, **fields})  # type: ignore[arg-type]


def store(redis: Redis, *experiments: Experiment) -> None:
    for e in experiments:
        redis.hset(EXPERIMENTS, e.id, e.dumps())


def expected_arm(e: Experiment, secret: bytes, user: str) -> str | None:
    return arm_of(bucket_of(e, user_tag(secret, user)), e.share)


def ids_by_arm(e: Experiment, secret: bytes, prefix: str, each: int = 3
               ) -> dict[str | None, list[str]]:
    """`each` ids outside the holdout in every arm of `e` (and outside it, below 50 %) at
    its step."""
    found: dict[str | None, list[str]] = {"treatment": [], "control": []}
    if e.share < 50:
        found[None] = []
    for i in range(10_000):
        user = f"{prefix}-{i}"
        if in_holdout(user, 0.1):
            continue
        arm = found[expected_arm(e, secret, user)]
        if len(arm) < each:
            arm.append(user)
        if all(len(v) == each for v in found.values()):
            return found
    raise AssertionError("not enough ids")


def compared(user: str, holdout_share: float = 0.1) -> str:
    """The experiment a plain decision of `user` carries: the personalization comparison's
    (ranking/experiment.py) when the user is in the holdout or the band above it, else ""."""
    from decision_worker.ranking.experiment import PERSONALIZATION, personalization_arm
    from edge_functions.bucketing import holdout_bucket

    return PERSONALIZATION if personalization_arm(holdout_bucket(user), holdout_share) else ""
