"""The demo's two rollout candidates, better and worse than production by construction, and
the proof: the click-through each model would get on the synthetic population, computed
from its hidden preferences (decision_worker/learning/synthetic.py).

Both are LightGBM models over four columns of the rows the worker builds (COLUMNS), fitted
on those rows for every synthetic user right now (the same `user_batch` and
`placement_matrix`, coded by the demo's trained ranker's feature spec): the better one
regresses each candidate's *true* click probability (the population's click model, first
slot), the worse one the same rows with the labels inverted, so it puts first what each
user likes least. "Known" is then checked, not assumed: each model, and production, decides
for every user through `decide` (the worker's own ranking, exploration included) and the
first variants' true click probabilities are averaged. The demo prints the three figures
before any user is served either model.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from decision_worker.keys import profile_key
from decision_worker.learning.registry import Registry
from decision_worker.learning.synthetic import Population
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.decide import decide
from decision_worker.ranking.feature_spec import FeatureSpec
from decision_worker.ranking.features import placement_matrix, user_batch
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.popularity import Popularity
from decision_worker.ranking.profile import Profile
from decision_worker.ranking.ranker import Ranker
from decision_worker.settings import WorkerSettings
from edge_functions.keys import user_tag

PARAMS: dict[str, Any] = {
    "objective": "regression", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 5,
    "num_threads": 2, "seed": 7, "deterministic": True, "force_row_wise": True,
    "verbosity": -1,
}
ROUNDS = 60
# What the two models read: how much the user engaged with the variant's category (shares,
# which keep their meaning as the demo's waves add history), the category and whether it is
# the default: the population's click model depends on nothing else.
COLUMNS = ("c_affinity", "taste_similarity", "is_default", "v_category")


@dataclass(frozen=True)
class Inputs:
    """What the worker ranks with at this moment (read from the demo's own worker)."""

    redis: Any
    settings: WorkerSettings
    population: Population
    catalog: Catalog
    popularity: Popularity
    production: Ranker


@dataclass(frozen=True)
class KnownModels:
    better: str
    worse: str
    truth: dict[str, float]  # model version → its true first-slot click-through


def known_models(inputs: Inputs, registry: Registry, trained: str) -> KnownModels:
    """Fit, register and check the better and the worse candidate (module docstring)."""
    _, card = registry.load(trained)
    spec = FeatureSpec.from_card({**card, "columns": list(COLUMNS)}, trained)
    x, truth = _rows_and_truth(inputs, spec)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    versions = []
    for name, labels, what in (
            ("better", truth, "true click probabilities of the synthetic population"),
            ("worse", -truth, "true click probabilities, inverted: what users like least first")):
        version = f"demo-{name}-{stamp}"
        dataset = lgb.Dataset(spec.model_rows(x), labels, feature_name=list(spec.columns),
                              categorical_feature=[spec.columns.index(c)
                                                   for c in spec.categorical])
        booster = lgb.train(PARAMS, dataset, num_boost_round=ROUNDS)
        registry.register(version, str(booster.model_to_string()),
                          {**spec.card(), "trained_on": what, "rows": len(labels),
                           "demo": f"the demo's {name} model"})
        versions.append(version)
    figures = {version: true_click_through(inputs, registry_ranker(registry, version))
               for version in versions}
    figures[inputs.production.version] = true_click_through(inputs, inputs.production)
    return KnownModels(versions[0], versions[1], figures)


def registry_ranker(registry: Registry, version: str) -> Ranker:
    text, card = registry.load(version)
    return LightGBMRanker.from_card(version, text, card)


def true_click_through(inputs: Inputs, ranker: Ranker) -> float:
    """The mean true click probability of the variant `ranker` would put first, over every
    user and placement (the holdout included: this is the model's own figure)."""
    population, settings = inputs.population, inputs.settings
    profiles, tags = _profiles(inputs)
    users = user_batch(profiles, [time.time()] * len(profiles), inputs.catalog,
                       traits=ranker.traits)
    decided = decide(users, inputs.catalog, inputs.popularity, ranker, settings.ranked_size,
                     0.0, tags, rank_limit=settings.rank_limit)
    chances = [population.click_probability(user, placement, d.record.ranked[0])
               for user, per_user in zip(population.users, decided, strict=True)
               for placement, d in per_user.items()]
    return float(np.mean(chances))


def _profiles(inputs: Inputs) -> tuple[list[Profile], list[str]]:
    secret = inputs.settings.key_secret_bytes
    tags = [user_tag(secret, u.user_id) for u in inputs.population.users]
    raws = inputs.redis.mget([profile_key(t) for t in tags])
    return [Profile.loads(raw) for raw in raws], tags


def _rows_and_truth(inputs: Inputs, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Every eligible (user, candidate) row the worker would score now, and the candidate's
    true click probability for that user in the first slot."""
    profiles, _ = _profiles(inputs)
    users = user_batch(profiles, [time.time()] * len(profiles), inputs.catalog,
                       traits=spec.traits)
    rows, labels = [], []
    for placement, candidates in inputs.catalog.placements.items():
        x, eligible = placement_matrix(users, candidates, inputs.popularity)
        for u, user in enumerate(inputs.population.users):
            for v, variant in enumerate(candidates.variants):
                if eligible[u, v]:
                    rows.append(x[u, v])
                    labels.append(inputs.population.click_probability(user, placement,
                                                                      variant))
    return np.array(rows), np.array(labels)
