"""Experiments in the worker, against a real Redis: assignment by the hash, sticky arms,
the holdout outside every experiment, shadow scoring that changes nothing served, a bad
treatment model leaving production in place, and the engagement of users in arms."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.keys import EVENTS_STREAM, EXPERIMENTS, REDECIDE_DUE, profile_key
from decision_worker.online.batch import BatchProcessor
from decision_worker.online.batch_result import BatchResult
from decision_worker.online.decision_logger import DecisionLogger
from decision_worker.online.experiment_arms import ArmEngagement, LiveExperiment, LiveExperiments
from decision_worker.online.redecide_schedule import enqueue_due
from decision_worker.online.stream_entries import decode_entry
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.ranker import BaselineRanker, Ranker
from edge_functions.bucketing import in_holdout
from edge_functions.decision_record import decode, encode
from edge_functions.keys import MANIFEST_KEY, decision_key, user_tag
from object_store.folder import FolderStore

from ..conftest import NOW, track
from .experiment_support import (
    TREATMENT_MODEL,
    compared,
    expected_arm,
    experiment,
    ids_by_arm,
    register,
    store,
)
from .test_worker import session


def test_a_ramping_experiment_splits_users_by_the_hash(ingest, drain, decision, redis: Redis,
                                                        worker_settings) -> None:
    register(worker_settings.origin_dir)
    e = experiment(step_index=2)  # 20 %: treatment below 0.2, control from 0.5
    store(redis, e)
    secret = worker_settings.key_secret_bytes
    users = ids_by_arm(e, secret, "split")
    held = [f"held-{i}" for i in range(200) if in_holdout(f"held-{i}", 0.1)][:4]
    assert any(expected_arm(e, secret, h) == "treatment" for h in held)  # would be, if not held
    everyone = [u for arm in users.values() for u in arm] + held
    ingest([session(u, f"s-{u}") for u in everyone])
    drain()
    for arm, members in users.items():
        for user in members:
            hero, cta = decision(user, "hero"), decision(user, "cta")
            assert hero is not None and cta is not None
            if arm == "treatment":  # the treatment model: anything but the default first
                assert (hero.model_version, hero.arm, hero.experiment) == (
                    TREATMENT_MODEL, "treatment", "exp-a")
                assert hero.ranked[0] != "evergreen"
            elif arm == "control":  # production (the baseline: the default first, no history)
                assert (hero.model_version, hero.arm, hero.experiment) == (
                    BaselineRanker.version, "control", "exp-a")
                assert hero.ranked[0] == "evergreen"
            else:  # outside at this step: production's plain record, format 1
                assert (hero.model_version, hero.arm, hero.experiment) == (
                    BaselineRanker.version, "treatment", compared(user))
                assert encode(hero).startswith(b"2|" if compared(user) else b"1|")
            # the experiment covers hero only: cta is production's, plain, for everyone
            assert (cta.model_version, cta.arm, cta.experiment) == (
                BaselineRanker.version, "treatment", compared(user))
            assert _arms(redis, secret, user) == ({"exp-a": arm} if arm else {})
    for user in held:  # the holdout is outside every experiment
        hero = decision(user, "hero")
        assert hero is not None and (hero.arm, hero.experiment) == ("holdout",
                                                                    "personalization")
        assert _arms(redis, secret, user) == {}


def test_arms_are_sticky_across_sessions_refreshes_and_steps(ingest, drain, decision,
                                                             redis: Redis,
                                                             worker_settings) -> None:
    register(worker_settings.origin_dir)
    secret = worker_settings.key_secret_bytes
    e = experiment(step_index=0)
    reseeded = e.with_(step_index=2, seed="reshuffled")
    store(redis, e)
    users = ids_by_arm(e, secret, "sticky", each=2)
    stored = [*users["treatment"], *users["control"]]
    # outside at 1 %, in the treatment at 20 %: enters it when the ramp widens
    entering = next(u for u in (f"enter-{i}" for i in range(10_000))
                    if not in_holdout(u, 0.1) and expected_arm(e, secret, u) is None
                    and expected_arm(reseeded, secret, u) == "treatment")
    everyone = [*stored, entering]
    ingest([session(u, f"a-{u}") for u in everyone])
    drain()
    first = {u: decision(u, "hero") for u in everyone}
    assert [first[u].arm for u in stored] == ["treatment"] * 2 + ["control"] * 2
    assert first[entering].experiment == ""
    # A stored arm holds even where a fresh draw would now say otherwise (a new seed here;
    # in production only an identity merge makes them differ)
    assert any(expected_arm(reseeded, secret, u) != first[u].arm for u in stored)
    store(redis, reseeded)
    ingest([session(u, f"b-{u}", at=NOW + dt.timedelta(minutes=1)) for u in everyone])
    drain()
    for user in stored:
        again = decision(user, "hero")
        assert again.decided_at > first[user].decided_at
        assert (again.arm, again.experiment) == (first[user].arm, "exp-a")
    assert (decision(entering, "hero").arm, decision(entering, "hero").experiment) == (
        "treatment", "exp-a")
    # the re-decision schedule keeps the arms too
    assert asyncio.run(_refresh(worker_settings)) == len(everyone)
    before = {u: decision(u, "hero") for u in everyone}
    drain()
    for user in everyone:
        after = decision(user, "hero")
        assert after.decided_at > before[user].decided_at
        assert (after.arm, after.experiment) == (before[user].arm, before[user].experiment)
    # the experiment ends: arms are dropped at the next decision, records are plain again
    store(redis, e.with_(status="complete"))
    ingest([session(u, f"c-{u}", at=NOW + dt.timedelta(minutes=2)) for u in everyone])
    drain()
    for user in everyone:
        assert decision(user, "hero").experiment == ""
        assert _arms(redis, secret, user) == {}


def test_a_login_keeps_one_arm_for_the_person(ingest, drain, decision, redis: Redis,
                                              worker_settings) -> None:
    register(worker_settings.origin_dir)
    secret = worker_settings.key_secret_bytes
    e = experiment(step_index=3)  # 50 %
    store(redis, e)
    pool = ids_by_arm(e, secret, "merge", each=4)
    anon_t, anon_c = pool["treatment"][0], pool["control"][0]
    known_c, fresh_known = pool["control"][1], pool["treatment"][1]
    ingest([session(None, "s1", anon_t), session(None, "s2", anon_c), session(known_c, "s3")])
    drain()
    assert decision(anon_t, "hero").arm == "treatment"
    # an account with an arm keeps it: the anonymous id (treatment) now sees control
    # and an account with none adopts the anonymous arm (control, where its own hash says
    # treatment)
    ingest([{"type": "identify", "userId": known_c, "anonymousId": anon_t, "messageId": "i1",
             "timestamp": (NOW + dt.timedelta(seconds=5)).isoformat()},
            {"type": "alias", "userId": fresh_known, "previousId": anon_c, "messageId": "i2",
             "timestamp": (NOW + dt.timedelta(seconds=5)).isoformat()}])
    drain()
    for known, anonymous, arm in ((known_c, anon_t, "control"),
                                  (fresh_known, anon_c, "control")):
        served = decision(known, "hero")
        assert (served.arm, served.experiment) == (arm, "exp-a")
        assert decision(anonymous, "hero") == served  # the same record under both ids
        assert _arms(redis, secret, known) == {"exp-a": arm}
    # later anonymous-only events and refreshes of the anonymous id decide for the person
    ingest([session(None, "s4", anon_t, at=NOW + dt.timedelta(minutes=1))])
    drain()
    assert decision(anon_t, "hero") == decision(known_c, "hero")
    assert decision(anon_t, "hero").arm == "control"
    # the anonymous id's scheduled refresh re-decides the known user, for both ids (it
    # decided the stale anonymous profile, with its own arm, before)
    before = decision(known_c, "hero")
    assert asyncio.run(_refresh(worker_settings, {user_tag(secret, anon_t)})) == 1
    drain()
    refreshed = decision(known_c, "hero")
    assert refreshed.decided_at > before.decided_at and refreshed.arm == "control"
    assert decision(anon_t, "hero") == refreshed
    assert redis.zscore(REDECIDE_DUE, user_tag(secret, anon_t)) == redis.zscore(
        REDECIDE_DUE, user_tag(secret, known_c))  # refreshed together from now on
    # another account claiming the anonymous id later does not write to it
    other = pool["treatment"][2]
    ingest([{"type": "identify", "userId": other, "anonymousId": anon_t, "messageId": "i3",
             "timestamp": (NOW + dt.timedelta(minutes=2)).isoformat()},
            session(other, "s5", at=NOW + dt.timedelta(minutes=2))])
    drain()
    assert decision(other, "hero").arm == "treatment"
    assert decision(anon_t, "hero").arm == "control"


def test_shadow_logs_what_the_treatment_would_serve_and_stores_production(
        ingest, redis: Redis, worker_settings, drain) -> None:
    registry = register(worker_settings.origin_dir)
    text, card = registry.load(TREATMENT_MODEL)
    treatment = LightGBMRanker.from_card(TREATMENT_MODEL, text, card)
    users = [f"shadow-{i}" for i in range(40)]
    ingest([session(u, f"s-{u}") for u in users])
    items = [(i.decode(), decode_entry(f)) for i, f in redis.xrange(EVENTS_STREAM)]
    secret = worker_settings.key_secret_bytes
    keys = [k for u in users for k in (decision_key(user_tag(secret, u), "hero"),
                                       decision_key(user_tag(secret, u), "cta"),
                                       profile_key(user_tag(secret, u)))]
    shadow = experiment(status="shadow", shadow_share=0.5)

    def run(ranker: Ranker, experiments: LiveExperiments) -> tuple[dict[str, Any], list]:
        redis.delete(*keys)
        _, lines = asyncio.run(_process(worker_settings, items, ranker, experiments))
        return {k: redis.get(k) for k in keys}, lines

    plain, _ = run(BaselineRanker(), LiveExperiments())
    stored, lines = run(BaselineRanker(), LiveExperiments(
        {shadow.id: shadow}, (LiveExperiment(shadow, treatment),)))
    assert stored == plain  # what is stored (and served) is production's, byte for byte
    as_production, _ = run(treatment, LiveExperiments())
    shadowed = [line for line in lines if "shadow_model" in line]
    # about half of the decisions (the share), hero only (what the experiment covers)
    assert 10 <= len(shadowed) <= 30 and {line["placement"] for line in shadowed} == {"hero"}
    for line in shadowed:
        would = decode(as_production[decision_key(line["tag"], "hero")])
        assert line["shadow_model"] == TREATMENT_MODEL
        assert tuple(line["shadow_ranked"]) == would.ranked  # what it would have served
        assert line["arm"] == "treatment" and "experiment" not in line
    # through a worker: the shadow model is loaded from the registry, the lines reach the log
    redis.delete(*keys)
    store(redis, shadow)
    ingest([session(u, f"again-{u}") for u in users])
    drain()
    logged = DecisionLog(FolderStore(worker_settings.origin_dir)).read_days(
        NOW.date() - dt.timedelta(days=1), NOW.date() + dt.timedelta(days=1))
    assert sum("shadow_ranked" in line for line in logged) == len(shadowed)


def test_an_unloadable_treatment_model_leaves_production_served(ingest, drain, decision,
                                                                redis: Redis,
                                                                worker_settings) -> None:
    registry = register(worker_settings.origin_dir, "lgbm-corrupt")
    registry.store.put("models/lgbm-corrupt/model.txt", b"tree\ngarbage")
    store(redis, experiment(id="exp-missing", treatment_model="lgbm-missing", step_index=3),
          experiment(id="exp-corrupt", treatment_model="lgbm-corrupt", step_index=3,
                     placements=("cta",)))
    redis.hset(EXPERIMENTS, "exp-broken", b'{"id": "exp-broken"')
    users = [f"bad-{i}" for i in range(30) if not in_holdout(f"bad-{i}", 0.1)]
    ingest([session(u, f"s-{u}") for u in users])
    worker = drain()
    for user in users:
        for placement in ("hero", "cta"):
            record = decision(user, placement)
            assert record is not None
            assert (record.model_version, record.arm, record.experiment) == (
                BaselineRanker.version, "treatment", compared(user))
    assert worker.metrics.registry.get_sample_value(
        "edgepick_worker_experiment_refusals_total") == 3
    assert worker.totals.users_decided == len(users)


def test_clicks_of_users_in_an_arm_are_collected_for_the_arm_counters(
        ingest, redis: Redis, worker_settings) -> None:
    secret = worker_settings.key_secret_bytes
    e = experiment(step_index=2)
    users = ids_by_arm(e, secret, "clicks", each=1)
    treated, control, outside = users["treatment"][0], users["control"][0], users[None][0]
    live = LiveExperiments({e.id: e}, (LiveExperiment(e, BaselineRanker()),))
    later = NOW + dt.timedelta(minutes=1)
    ingest([session(u, f"s-{u}") for u in (treated, control, outside)])
    ingest([track(u, kind, f"{kind}-{placement}-{u}", later, placement=placement,
                  variant=variant)
            for u in (treated, control, outside)
            for kind, placement, variant in (("Variant Clicked", "hero", "trail-running"),
                                             ("Variant Viewed", "hero", "trail-running"),
                                             ("Variant Clicked", "cta", "join"),
                                             ("Variant Converted", "hero", "trail-running"))])
    items = [(i.decode(), decode_entry(f)) for i, f in redis.xrange(EVENTS_STREAM)]
    first, _ = asyncio.run(_process(worker_settings, items[:3], BaselineRanker(), live))
    assert first.arm_engagement == []  # decided (and assigned) now: nothing engaged yet
    result, _ = asyncio.run(_process(worker_settings, items[3:], BaselineRanker(), live))
    tags = {u: user_tag(secret, u) for u in (treated, control)}
    assert sorted(result.arm_engagement, key=lambda a: (a.arm, a.kind)) == [
        ArmEngagement("exp-a", "control", tags[control], "hero", "click"),
        ArmEngagement("exp-a", "control", tags[control], "hero", "conversion"),
        ArmEngagement("exp-a", "treatment", tags[treated], "hero", "click"),
        ArmEngagement("exp-a", "treatment", tags[treated], "hero", "conversion")]
    # the same clicks when the experiment is over count for no arm
    done = LiveExperiments()
    again, _ = asyncio.run(_process(worker_settings, [(f"9-{i}", item) for i, (_, item)
                                                      in enumerate(items[3:])],
                                    BaselineRanker(), done))
    assert again.arm_engagement == []


async def _process(settings: Any, items: list, ranker: Ranker, experiments: LiveExperiments
                   ) -> tuple[BatchResult, list[dict[str, Any]]]:
    """One batch through a BatchProcessor with these experiments; its decision-log lines."""
    client = AsyncRedis.from_url(settings.redis_url)
    lines: list[dict[str, Any]] = []

    class Captured(DecisionLogger):
        async def write(self, batch_lines: list[dict[str, Any]]) -> None:
            lines.extend(batch_lines)

    try:
        processor = BatchProcessor(client, dataclasses.replace(settings, holdout_share=0.1),
                                   ranker)
        processor.catalog = Catalog.from_bytes(await client.get(MANIFEST_KEY))
        processor.experiments = experiments
        processor.decision_log = Captured(None)
        return await processor.process(items), lines
    finally:
        await client.aclose()


async def _refresh(settings: Any, only: set[str] | None = None) -> int:
    """Run the re-decision schedule two days ahead (every user due), or for `only` tags."""
    client = AsyncRedis.from_url(settings.redis_url)
    try:
        if only is not None:
            due = await client.zrange(REDECIDE_DUE, 0, -1)
            await client.zadd(REDECIDE_DUE, {t: time.time() + 3 * 86_400 for t in due
                                             if t.decode() not in only})
        return await enqueue_due(client, settings, now=time.time() + 2 * 86_400, force=True)
    finally:
        await client.aclose()


def _arms(redis: Redis, secret: bytes, user: str) -> dict[str, str]:
    return dict(json.loads(redis.get(profile_key(user_tag(secret, user)))).get("ar", {}))



def test_clicks_of_the_holdout_and_its_band_count_for_the_personalization_comparison(
        ingest, redis: Redis, worker_settings) -> None:
    secret = worker_settings.key_secret_bytes
    pool = [f"p-{i}" for i in range(400)]
    held = next(u for u in pool if compared(u) and in_holdout(u, 0.1))
    band = next(u for u in pool if compared(u) and not in_holdout(u, 0.1))
    plain = next(u for u in pool if not compared(u))
    later = NOW + dt.timedelta(minutes=1)
    ingest([session(u, f"s-{u}") for u in (held, band, plain)])
    ingest([track(u, "Variant Clicked", f"c-{u}", later, placement="cta", variant="join")
            for u in (held, band, plain)])
    items = [(i.decode(), decode_entry(f)) for i, f in redis.xrange(EVENTS_STREAM)]
    asyncio.run(_process(worker_settings, items[:3], BaselineRanker(), LiveExperiments()))
    result, _ = asyncio.run(_process(worker_settings, items[3:], BaselineRanker(),
                                     LiveExperiments()))
    assert sorted(result.arm_engagement, key=lambda a: a.arm) == [
        ArmEngagement("personalization", "holdout", user_tag(secret, held), "cta", "click"),
        ArmEngagement("personalization", "treatment", user_tag(secret, band), "cta", "click")]
