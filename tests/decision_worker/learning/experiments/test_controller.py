"""The rollout controller against real Redis and a folder registry: shadow, ramps, rollback,
completion with promotion, one leader, resumption, and compare-and-set against operators.

Arm counters are seeded as the worker keeps them (hashes of ArmTotals' sums per step and
over all steps), from per-user counts drawn for each arm."""

from __future__ import annotations

import dataclasses

import numpy as np
from redis import Redis

from decision_worker.keys import arm_totals_key
from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.learning.experiments.controller import RolloutController, lift_history
from decision_worker.learning.experiments.status import (
    personalization_document,
    rollout_documents,
)
from decision_worker.learning.registry import Registry
from decision_worker.ranking.experiment import Experiment


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def started(redis: Redis, clock: Clock, **changes: object) -> Experiment:
    experiment = Experiment("rollout-new", "lgbm-new", "lgbm-old", started_at=clock.now,
                            shadow_seconds=60, min_exposures=500, steps=(5.0, 20.0, 50.0, 100.0))
    return rollout_store.start(redis, experiment.with_(**changes), "test")


def seed(redis: Redis, experiment: str, step: int | str, users: int, click_rate: float,
         arm: str, rng: np.random.Generator) -> None:
    exposures = rng.integers(1, 6, users)
    clicks = rng.binomial(exposures, click_rate)
    totals = ArmTotals.from_users(arm, exposures, clicks)
    for scope in (step, "all"):
        key = arm_totals_key(experiment, scope, arm)
        for field in dataclasses.fields(ArmTotals):
            if field.name != "arm":
                redis.hincrby(key, field.name, getattr(totals, field.name))


def test_shadow_then_steps_as_each_gate_passes(redis: Redis, registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock)
    controller = RolloutController(redis, registry, clock)
    assert controller.look() == []  # still in shadow
    clock.now += 61
    assert "ramping to 5 %" in controller.look()[0]
    ramping = rollout_store.load_experiment(redis, experiment.id)
    assert (ramping.status, ramping.share) == ("ramping", 5.0)
    changes = controller.look()
    assert "gathering exposures" in changes[0]
    assert controller.look() == []  # the same hold is recorded once
    rng = np.random.default_rng(1)
    seed(redis, experiment.id, 0, 200, 0.1, "treatment", rng)
    seed(redis, experiment.id, 0, 2000, 0.1, "control", rng)
    assert "→ 20 %" in controller.look()[0]
    assert rollout_store.load_experiment(redis, experiment.id).share == 20.0
    actions = [e.action for e in rollout_store.history(redis, experiment.id)]
    assert actions == ["start", "shadow_done", "hold", "advance"]


def test_a_worse_model_is_rolled_back_and_production_stays(redis: Redis,
                                                           registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock, status="ramping", step_index=1)
    rng = np.random.default_rng(2)
    seed(redis, experiment.id, 1, 5000, 0.06, "treatment", rng)
    seed(redis, experiment.id, 1, 12000, 0.10, "control", rng)
    changes = RolloutController(redis, registry, clock).look()
    assert "guardrail breached, rolling back" in changes[0]
    assert rollout_store.load_experiment(redis, experiment.id).status == "rolled_back"
    assert registry.pointers()["production"] == "lgbm-old"
    assert lift_history(redis, experiment.id)[-1]["high"] < 0


def test_the_last_step_completes_and_promotes_even_after_a_crash(redis: Redis,
                                                                 registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock, status="ramping", step_index=3)
    # A controller died after recording completion, before promoting:
    done = experiment.with_(status="complete")
    assert rollout_store.transition(redis, experiment, done, "complete", "test: died here")
    assert registry.pointers()["production"] == "lgbm-old"
    changes = RolloutController(redis, registry, clock).look()
    assert changes == ["rollout-new: production is now lgbm-new"]
    assert registry.pointers()["production"] == "lgbm-new"
    assert rollout_store.load_experiment(redis, experiment.id).notes["promoted"] is True
    assert RolloutController(redis, registry, clock).look() == []  # promoted once


def test_one_controller_acts_at_a_time(redis: Redis, registry: Registry) -> None:
    clock = Clock()
    started(redis, clock)
    clock.now += 61
    first = RolloutController(redis, registry, clock)
    second = RolloutController(redis, registry, clock)
    assert first.lead() and not second.lead()
    assert second.look() == []
    assert rollout_store.load_experiment(redis, "rollout-new").status == "shadow"
    first.release()
    assert second.look() and not first.lead()
    assert rollout_store.load_experiment(redis, "rollout-new").status == "ramping"


def test_a_stale_controller_never_overwrites_an_operators_stop(redis: Redis,
                                                               registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock)
    stopped = experiment.with_(status="stopped")
    assert rollout_store.transition(redis, experiment, stopped, "stop", "operator")
    later = experiment.with_(status="ramping")
    assert not rollout_store.transition(redis, experiment, later, "shadow_done", "stale")
    assert rollout_store.load_experiment(redis, experiment.id).status == "stopped"


def test_status_documents_carry_figures_and_history(redis: Redis, registry: Registry) -> None:
    clock = Clock()
    experiment = started(redis, clock, status="ramping", step_index=0)
    rng = np.random.default_rng(3)
    seed(redis, experiment.id, 0, 400, 0.12, "treatment", rng)
    seed(redis, experiment.id, 0, 4000, 0.10, "control", rng)
    RolloutController(redis, registry, clock).look()
    doc, = rollout_documents(redis)
    arms = doc["analysis"]["arms"]
    assert arms["treatment"]["users"] == 400 and arms["control"]["users"] == 4000
    low, high = arms["control"]["low"], arms["control"]["high"]
    assert low < arms["control"]["click_through"] < high
    assert doc["analysis"]["srm"]["p_value"] > 0.001  # 400 : 4000 is 5 % : 50 %
    assert doc["analysis"]["lift"][-1]["low"] < doc["analysis"]["lift_now"]["value"]
    assert [h["action"] for h in doc["analysis"]["history"]] == ["start", "advance"]


def test_the_lift_of_personalization_against_the_holdout_is_kept_over_time(
        redis: Redis, registry: Registry) -> None:
    clock = Clock()
    rng = np.random.default_rng(5)
    seed(redis, "personalization", 0, 3000, 0.08, "holdout", rng)
    seed(redis, "personalization", 0, 3000, 0.12, "treatment", rng)
    controller = RolloutController(redis, registry, clock)
    controller.look()
    clock.now += 60
    controller.look()
    doc = personalization_document(redis)
    assert list(doc["arms"]) == ["holdout", "treatment"]
    assert doc["arms"]["holdout"]["users"] == doc["arms"]["treatment"]["users"] == 3000
    assert 0.3 < doc["lift_now"]["value"] < 0.7 and doc["lift_now"]["low"] > 0
    assert [p["at"] for p in doc["lift"]] == ["2027-01-15T08:00:00+00:00",
                                              "2027-01-15T08:01:00+00:00"]
