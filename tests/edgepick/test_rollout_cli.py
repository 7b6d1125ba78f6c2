"""`edgepick rollout …` and `edgepick promote` from the command line: what an operator types,
what is stored, and one clear line for every kind of bad input."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.experiments.arm_totals import ArmTotals, click_through
from decision_worker.learning.registry import Registry
from decision_worker.ranking.arm_counters import CounterChange, apply_changes
from object_store import from_url
from tests.edgepick.test_cli import one_error_line, run


@pytest.fixture
def env(settings, redis: Redis) -> dict[str, str]:
    registry = Registry(from_url(settings.origin))
    for version in ("lgbm-a", "lgbm-b"):
        registry.register(version, f"model {version}", {})
    return {"EDGEPICK_REDIS_URL": settings.redis_url, "EDGEPICK_ORIGIN": settings.origin,
            "EDGEPICK_DATA_DIR": str(settings.data_dir)}


@pytest.mark.parametrize(("args", "says"), [
    (["lgbm-zzz", "--force", "t"], "model lgbm-zzz is not in the registry"),
    (["lgbm-a"], "promotion of lgbm-a refused: its card has no evaluation against production"),
    (["lgbm-a", "--force", "t", "--steps", "1,5,50"], "steps must increase from above 0 to 100"),
    (["lgbm-a", "--force", "t", "--steps", "1,five,100"], "--steps '1,five,100': give per cents"),
    (["lgbm-a", "--force", "t", "--steps", "1,75,100"], "75 % would take users from the control"),
    (["lgbm-a", "--force", "t", "--guardrail", "revenue:5%"],
     "guardrail metric 'revenue' is unknown: use one of click_through, conversion"),
    (["lgbm-a", "--force", "t", "--guardrail", "click_through:lots"], "use METRIC:MAX_DROP"),
    (["lgbm-a", "--force", "t", "--guardrail", "click_through:150%"], "a share in [0, 1)"),
    (["lgbm-a", "--force", "t", "--placement", "Hero!"], "placement id 'Hero!' is invalid"),
])
def test_bad_rollouts_are_refused_with_one_line(env, redis: Redis, args: list[str],
                                                says: str) -> None:
    line = one_error_line(run(["rollout", "start", *args], env))
    assert says in line, line
    assert rollout_store.load_experiments(redis) == []  # nothing half-started


def test_start_status_stop_and_one_rollout_per_placement(env, redis: Redis) -> None:
    started = run(["rollout", "start", "lgbm-a", "--force", "test", "--placement", "hero",
                   "--steps", "1,10,50,100", "--guardrail", "click_through:3%"], env)
    assert started.returncode == 0, started.stderr
    assert "rollout rollout-lgbm-a started: lgbm-a in shadow" in started.stdout
    clash = one_error_line(run(["rollout", "start", "lgbm-b", "--force", "t", "--placement",
                                "hero"], env))
    assert "experiment rollout-lgbm-a already runs on hero" in clash
    elsewhere = run(["rollout", "start", "lgbm-b", "--force", "t", "--placement", "cta"], env)
    assert elsewhere.returncode == 0, elsewhere.stderr
    status = run(["rollout", "status"], env)
    assert "rollout-lgbm-a: lgbm-a vs baseline, shadow, step 1/4 (0 % of 1,10,50,100)" \
        in status.stdout, status.stdout
    doc, = json.loads(run(["rollout", "status", "rollout-lgbm-a", "--json"], env).stdout)
    assert doc["guardrails"] == [{"metric": "click_through", "max_drop": 0.03}]
    assert doc["analysis"]["history"][0]["reason"] == "started: forced past the offline " \
                                                      "gate: test"
    assert run(["rollout", "stop", "rollout-lgbm-a"], env).returncode == 0
    assert "is stopped already" in one_error_line(run(["rollout", "stop", "rollout-lgbm-a"],
                                                      env))
    assert "no experiment 'nope'" in one_error_line(run(["rollout", "stop", "nope"], env))
    actions = [e.action for e in rollout_store.history(redis, "rollout-lgbm-a")]
    assert actions == ["start", "stop"]


def counted(redis_url: str, changes: list[CounterChange]) -> None:
    """Counts as the worker keeps them (exposures from the edge, clicks and conversions)."""
    async def go() -> None:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, changes)
        await client.aclose()

    asyncio.run(go())


def shown(exposures: np.ndarray, events: np.ndarray) -> str:
    """A rate and its delta-method 95 % interval from per-user counts, as status prints it."""
    rate = click_through(ArmTotals.from_users("arm", exposures, events))
    assert rate is not None
    half = 1.96 * rate.variance ** 0.5
    return f"{rate.value:.3%} [{rate.value - half:.3%}, {rate.value + half:.3%}]"


def test_status_shows_both_rates_and_lifts_per_placement(env, redis: Redis) -> None:
    assert run(["rollout", "start", "lgbm-a", "--force", "test", "--guardrail",
                "conversion:5%"], env).returncode == 0
    changes = [CounterChange("rollout-lgbm-a", 0, arm, f"{arm}-{i}", "hero", exposures=4,
                             clicks=i % 2, conversions=int(i % 4 == 0))
               for arm in ("control", "treatment") for i in range(8)]
    changes += [CounterChange("rollout-lgbm-a", 0, "control", "control-0", "cta", 2, 1, 1)]
    counted(env["EDGEPICK_REDIS_URL"], changes)
    lines = run(["rollout", "status", "rollout-lgbm-a"], env).stdout.splitlines()
    exposures = np.array([6, 4, 4, 4, 4, 4, 4, 4])  # control over both placements
    clicks = np.array([1, 1, 0, 1, 0, 1, 0, 1])
    conversions = np.array([2, 0, 0, 0, 1, 0, 0, 0])
    assert lines[1] == (f"  control   8 users, 34 exposures, 5 clicks, click-through "
                        f"{shown(exposures, clicks)}, 3 conversions, conversion rate "
                        f"{shown(exposures, conversions)}"), lines
    assert lines[3].startswith("  lift      treatment vs control: click-through 12.5000% vs "
                               "14.7059%, lift -15.00% [")  # 4/32 against 5/34
    assert lines[4].startswith("            treatment vs control: conversion rate 6.2500% vs "
                               "8.8235%, lift -29.17% [")  # 2/32 against 3/34
    hero = lines.index("  placement hero:")
    assert lines[hero + 1].startswith("    control   8 users, 32 exposures, 4 clicks, "
                                      "click-through 12.500% [")
    assert lines[lines.index("  placement cta:") + 1] == (
        "    control   1 users, 2 exposures, 1 clicks, click-through n/a, 1 conversions, "
        "conversion rate n/a")
    doc, = json.loads(run(["rollout", "status", "rollout-lgbm-a", "--json"], env).stdout)
    assert doc["guardrails"] == [{"metric": "conversion", "max_drop": 0.05}]
    placed = doc["analysis"]["placements"]
    assert list(placed) == ["cta", "hero"]
    assert placed["hero"]["arms"]["treatment"]["conversions"] == 2
    assert placed["hero"]["arms"]["treatment"]["conversion_rate"] == 2 / 32
    assert placed["cta"]["arms"]["treatment"]["users"] == 0
    assert placed["cta"]["lift_now"] is None and placed["hero"]["lift_now"]["low"] < 0


def test_promote_starts_a_rollout_and_now_switches_at_once(env, redis: Redis,
                                                           settings) -> None:
    promoted = run(["promote", "lgbm-a", "--force", "test"], env)
    assert promoted.returncode == 0, promoted.stderr
    assert "rollout rollout-lgbm-a started" in promoted.stdout
    assert Registry(from_url(settings.origin)).pointers()["production"] is None
    at_once = run(["promote", "lgbm-b", "--now", "--force", "outage"], env)
    assert "production is now lgbm-b" in at_once.stdout, at_once.stderr
    log = Registry(from_url(settings.origin)).pointers()["log"]
    assert log[-1]["why"] == "forced: --now: outage"


def test_flags_prints_the_cards_flagged_variants(env, settings) -> None:
    registry = Registry(from_url(settings.origin))
    registry.register("lgbm-c", "model c", {"content_flags": [
        {"placement": "hero", "variant": "h3", "views": 400, "clicks": 2,
         "expected_clicks": 31.5, "p_value": 1e-8}]})
    shown = run(["flags", "lgbm-c"], env)
    assert shown.stdout.splitlines() == [
        "lgbm-c: 1 variant(s) flagged for review",
        "  hero/h3: 2 clicks in 400 views (0.50%), the model expected 31.5 (7.88%); p 1e-08"]
    assert "not in the registry" in one_error_line(run(["flags", "lgbm-zz"], env))
