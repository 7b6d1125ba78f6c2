"""`edgepick rollout …` and `edgepick promote` from the command line: what an operator types,
what is stored, and one clear line for every kind of bad input."""

from __future__ import annotations

import json

import pytest
from redis import Redis

from decision_worker.learning.experiments import rollout_store
from decision_worker.learning.registry import Registry
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
     "guardrail metric 'revenue' is unknown: use one of click_through"),
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
