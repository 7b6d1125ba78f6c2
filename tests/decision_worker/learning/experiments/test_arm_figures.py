"""The analysis of a rollout per arm and per placement, in click-through and conversion rate,
from counters kept by the worker's script (real Redis); and a guardrail on conversion rolling
a model back that click-through alone would keep."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.arm_figures import analysis
from decision_worker.learning.experiments.arm_totals import ArmTotals, click_through
from decision_worker.learning.experiments.controller import RolloutController
from decision_worker.learning.registry import Registry
from decision_worker.ranking.arm_counters import CounterChange, apply_changes
from decision_worker.ranking.experiment import Experiment, GuardrailRule

from .test_controller import Clock

PLACEMENTS = ("hero", "cta")
Drawn = dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]


def count(redis_url: str, experiment: str, step: int, users: int,
          rates: dict[tuple[str, str], tuple[float, float]], rng: np.random.Generator
          ) -> Drawn:
    """Per arm and placement, `users` users with 1-5 exposures each and clicks and
    conversions at the given rates, counted through the worker's script; returns each
    user's (exposures, clicks, conversions)."""
    drawn: Drawn = {}
    changes = []
    for (arm, placement), (click_rate, conversion_rate) in rates.items():
        x = rng.integers(1, 6, users)
        y, z = rng.binomial(x, click_rate), rng.binomial(x, conversion_rate)
        drawn[(arm, placement)] = (x, y, z)
        changes += [CounterChange(experiment, step, arm, f"{arm}-{i}", placement, int(x[i]),
                                  int(y[i]), int(z[i])) for i in range(users)]

    async def go() -> None:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, changes)
        await client.aclose()

    asyncio.run(go())
    return drawn


def test_each_placement_gets_both_rates_with_intervals_and_both_lifts(redis_url: str,
                                                                      redis: Redis) -> None:
    experiment = rollout_store.start(redis, Experiment(
        "rollout-new", "lgbm-new", "lgbm-old", status="ramping", step_index=1), "test")
    rng = np.random.default_rng(11)
    drawn = count(redis_url, experiment.id, 1, 3000, {
        ("control", "hero"): (0.10, 0.020), ("treatment", "hero"): (0.10, 0.010),
        ("control", "cta"): (0.05, 0.010), ("treatment", "cta"): (0.08, 0.010)}, rng)
    doc = analysis(redis, experiment)
    assert list(doc["placements"]) == ["cta", "hero"]
    for placement in PLACEMENTS:
        for arm in ("control", "treatment"):
            x, y, z = drawn[(arm, placement)]
            figures = doc["placements"][placement]["arms"][arm]
            assert (figures["users"], figures["exposures"], figures["clicks"],
                    figures["conversions"]) == (3000, x.sum(), y.sum(), z.sum())
            for rate, low, high, events in (("click_through", "low", "high", y),
                                            ("conversion_rate", "conversion_low",
                                             "conversion_high", z)):
                want = click_through(ArmTotals.from_users(arm, x, events))
                assert want is not None and figures[rate] == pytest.approx(want.value)
                half = 1.96 * want.variance ** 0.5
                assert (figures[low], figures[high]) == pytest.approx(
                    (want.value - half, want.value + half))
    hero, cta = doc["placements"]["hero"], doc["placements"]["cta"]
    assert hero["conversion_lift_now"]["high"] < 0  # half the conversions: seen
    assert hero["lift_now"]["low"] < 0 < hero["lift_now"]["high"]  # same click-through
    assert cta["lift_now"]["low"] > 0  # +60 % click-through on cta only
    assert cta["conversion_lift_now"]["low"] < 0 < cta["conversion_lift_now"]["high"]
    assert "conversion rate" in hero["conversion_lift_now"]["describe"]
    control = doc["arms"]["control"]  # a user of each arm is one user on both placements
    assert control["users"] == 3000 and control["exposures"] == sum(
        drawn[("control", p)][0].sum() for p in PLACEMENTS)
    assert control["conversions"] == sum(drawn[("control", p)][2].sum() for p in PLACEMENTS)


@pytest.mark.parametrize(("guardrail", "rolled_back"), [("conversion", True),
                                                        ("click_through", False)])
def test_a_conversion_guardrail_rolls_back_what_click_through_keeps(
        redis_url: str, redis: Redis, registry: Registry, guardrail: str,
        rolled_back: bool) -> None:
    clock = Clock()
    experiment = rollout_store.start(redis, Experiment(
        "rollout-new", "lgbm-new", "lgbm-old", status="ramping", step_index=1,
        min_exposures=10**9, steps=(5.0, 20.0, 50.0, 100.0), started_at=clock.now,
        guardrails=(GuardrailRule(guardrail, 0.02),)), "test")
    count(redis_url, experiment.id, 1, 4000, {("control", "hero"): (0.10, 0.06),
                                              ("treatment", "hero"): (0.10, 0.03)},
          np.random.default_rng(4))
    changes = RolloutController(redis, registry, clock).look()
    status = rollout_store.load_experiment(redis, experiment.id).status
    assert status == ("rolled_back" if rolled_back else "ramping"), changes
    if rolled_back:
        assert "guardrail breached" in changes[0] and "conversion: lift" in changes[0]
    assert registry.pointers()["production"] == "lgbm-old"
