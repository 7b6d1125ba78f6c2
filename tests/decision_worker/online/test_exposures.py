"""The worker's side of exposures, on a real Redis: what the edge served reaches the arm
counters once, and its first exposure per user and step becomes a Segment `Experiment Viewed`
in the event log; malformed, unknown, inactive and forgotten entries are counted and skipped;
an entry delivered twice, or left by a dead consumer, counts once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import (
    ARM_OWNERS,
    EXPERIMENTS,
    EXPOSURES_GROUP,
    SUPPRESSED,
    arm_totals_key,
    arm_users_key,
    exposures_applied_key,
)
from decision_worker.learning.experiments.arm_figures import read_counts, read_totals
from decision_worker.learning.experiments.arm_totals import ArmTotals
from decision_worker.online import exposures as consumer_module
from decision_worker.online.experiment_arms import ArmEngagement
from decision_worker.online.exposures import ExposureCounter
from decision_worker.online.forget import forget
from decision_worker.online.worker import Worker
from decision_worker.ranking.arm_counters import record_engagement
from decision_worker.ranking.experiment import Experiment
from edge_functions.decision_record import DecisionRecord, encode
from edge_functions.exposures import FIELD, VERSION_FIELD
from edge_functions.keys import EXPOSURES_STREAM, decision_key, user_tag
from object_store.folder import FolderStore
from tests.conftest import SECRET, Settings, wait_until

from ..conftest import NOW, track
from .experiment_support import experiment, ids_by_arm, register, store
from .test_worker import session

EXPERIMENT = Experiment("rollout-1", "lgbm-new", "lgbm-old", name="New ranker",
                        status="ramping", step_index=1, placements=("hero", "cta"))


def exposures_logged(settings: Settings) -> list[dict[str, Any]]:
    assert settings.origin_dir is not None
    today = dt.datetime.now(dt.UTC).date()
    return EventLog(FolderStore(settings.origin_dir)).read_exposures(
        today - dt.timedelta(days=1), today + dt.timedelta(days=1))


def drain(settings: Settings) -> Worker:
    async def go() -> Worker:
        client = AsyncRedis.from_url(settings.redis_url or "")
        worker = Worker(client, settings, consumer="test-worker")
        await worker.run(burst=True)
        await client.aclose()
        return worker

    return asyncio.run(go())


def test_a_served_decision_reaches_the_counters_and_the_event_log_once(
        served_example: tuple[Settings, str], redis: Redis) -> None:
    settings, base = served_example
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    record = DecisionRecord(("trail-running",), "lgbm-new", "treatment", int(time.time()),
                            EXPERIMENT.id)
    redis.set(decision_key(user_tag(SECRET.encode(), "alice"), "hero"), encode(record))
    response = httpx.get(f"{base}/p/hero?uid=alice", follow_redirects=False)
    assert response.headers["x-edgepick-source"] == "decision"
    wait_until(lambda: redis.xlen(EXPOSURES_STREAM) == 1, what="the edge to send it")
    worker = drain(settings)
    step, overall = (read_totals(redis, EXPERIMENT.id, s) for s in (1, "all"))
    for totals in (step, overall):
        assert (totals["treatment"].users, totals["treatment"].exposures) == (1, 1)
        assert totals["control"].exposures == 0
    assert redis.xlen(EXPOSURES_STREAM) == 0  # counted, acknowledged and deleted
    [viewed] = exposures_logged(settings)
    assert viewed["type"] == "track" and viewed["event"] == "Experiment Viewed"
    assert viewed["userId"] == "alice"
    assert {k: viewed["properties"][k] for k in ("experiment_id", "experiment_name",
                                                 "variation_id", "variation_name")} == {
        "experiment_id": "rollout-1", "experiment_name": "New ranker",
        "variation_id": "treatment", "variation_name": "treatment (lgbm-new)"}
    assert worker.exposures.outcomes.labels("counted")._value.get() == 1

    for _ in range(2):  # more exposures count in x; Experiment Viewed stays once per step
        httpx.get(f"{base}/p/hero?uid=alice", follow_redirects=False)
    wait_until(lambda: redis.xlen(EXPOSURES_STREAM) >= 1, what="the edge to send them")
    time.sleep(0.3)
    drain(settings)
    assert read_totals(redis, EXPERIMENT.id, 1)["treatment"].exposures == 3
    assert read_totals(redis, EXPERIMENT.id, 1)["treatment"].users == 1
    assert len(exposures_logged(settings)) == 1


def add_entry(redis: Redis, *lines: str | bytes, fields: dict[bytes, bytes] | None = None,
              ) -> str:
    packed = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)
    entry = redis.xadd(EXPOSURES_STREAM, fields if fields is not None else
                       {VERSION_FIELD: b"1", FIELD: packed})
    return entry.decode()


def count(settings: Settings, consumer: str = "c1") -> ExposureCounter:
    async def go() -> ExposureCounter:
        client = AsyncRedis.from_url(settings.redis_url or "")
        assert settings.origin_dir is not None
        counter = ExposureCounter(client, EventLog(FolderStore(settings.origin_dir)),
                                  SECRET.encode(), consumer)
        while await counter.run_once():
            pass
        await client.aclose()
        return counter

    return asyncio.run(go())


def outcome(counter: ExposureCounter, name: str) -> float:
    return float(counter.outcomes.labels(name)._value.get())


def test_malformed_unknown_inactive_and_forgotten_exposures_are_counted_and_skipped(
        settings: Settings, redis: Redis) -> None:
    stopped = Experiment("rollout-0", "lgbm-new", "lgbm-old", status="stopped")
    redis.hset(EXPERIMENTS, mapping={EXPERIMENT.id: EXPERIMENT.dumps(),
                                     stopped.id: stopped.dumps(), "junk": b"{"})
    redis.hset(SUPPRESSED, user_tag(SECRET.encode(), "forgotten-user"), "2026-12-01")
    now = int(time.time() * 1000)
    add_entry(redis, f"{now}|hero|rollout-1|control|bob",  # the one that counts
              "garbage", f"{now}|hero|rollout-1|control|", "x|hero|rollout-1|control|a",
              f"{now}|HERO|rollout-1|control|a", b"\xff\xfe", "",
              f"{now}|hero|nope|control|a", f"{now}|hero|junk|control|a",
              f"{now}|hero|rollout-0|control|a", f"{now}|hero|rollout-1|holdout|a",
              f"{now}|email-header|rollout-1|control|a",
              f"{now}|hero|rollout-1|control|forgotten-user")
    add_entry(redis, fields={b"other": b"1"})
    add_entry(redis, fields={FIELD: b""})
    counter = count(settings)
    assert {name: outcome(counter, name) for name in consumer_module.OUTCOMES} == {
        "counted": 1, "malformed": 8, "unknown_experiment": 2, "inactive_experiment": 1,
        "wrong_arm": 1, "not_covered": 1, "forgotten": 1, "failed": 0}
    assert read_totals(redis, EXPERIMENT.id, 1)["control"].exposures == 1
    assert redis.xlen(EXPOSURES_STREAM) == 0
    assert redis.xpending(EXPOSURES_STREAM, EXPOSURES_GROUP)["pending"] == 0
    assert [m["userId"] for m in exposures_logged(settings)] == ["bob"]


class Crash(Exception):
    """The worker dying between the counters' script and the acknowledgement."""


def test_an_entry_delivered_again_after_a_crash_counts_once(settings: Settings,
                                                            redis: Redis) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    now = int(time.time() * 1000)
    entry = add_entry(redis, f"{now}|hero|rollout-1|treatment|ann",
                      f"{now + 5}|cta|rollout-1|treatment|ann")
    assert settings.origin_dir is not None
    log = EventLog(FolderStore(settings.origin_dir))

    def crash(messages: object) -> int:
        raise Crash

    async def twice() -> None:
        client = AsyncRedis.from_url(settings.redis_url or "")
        fields = {FIELD: redis.xrange(EXPOSURES_STREAM)[0][1][FIELD]}
        dying = ExposureCounter(client, log, SECRET.encode(), "c1")
        dying._log = EventLog(log.store)
        dying._log.append_exposures = crash  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await dying.count_entry(entry, fields)
        assert redis.exists(exposures_applied_key(entry))  # counted, not acknowledged
        living = ExposureCounter(client, log, SECRET.encode(), "c2")
        assert await living.count_entry(entry, fields)
        await client.aclose()

    asyncio.run(twice())
    totals = read_totals(redis, EXPERIMENT.id, 1)["treatment"]
    assert (totals.users, totals.exposures, totals.exposures_squared) == (1, 2, 4)
    [viewed] = exposures_logged(settings)  # the first exposure, logged by the second try
    assert viewed["properties"]["placement"] == "hero"
    assert redis.exists(exposures_applied_key(entry)) == 0  # acknowledged: marker gone
    assert redis.xlen(EXPOSURES_STREAM) == 0


def test_entries_left_by_a_dead_consumer_are_claimed_and_counted(
        settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    redis.xgroup_create(EXPOSURES_STREAM, EXPOSURES_GROUP, id="0", mkstream=True)
    add_entry(redis, f"{int(time.time() * 1000)}|hero|rollout-1|control|cat")
    redis.xreadgroup(EXPOSURES_GROUP, "dead", {EXPOSURES_STREAM: ">"})  # read, never acked
    monkeypatch.setattr(consumer_module, "CLAIM_IDLE_S", 0.05)
    time.sleep(0.1)
    count(settings, consumer="alive")
    assert read_totals(redis, EXPERIMENT.id, 1)["control"].exposures == 1
    assert redis.xlen(EXPOSURES_STREAM) == 0


def test_an_event_log_failure_leaves_the_entry_pending(settings: Settings, redis: Redis,
                                                        tmp_path) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    add_entry(redis, f"{int(time.time() * 1000)}|hero|rollout-1|control|dan")
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the origin folder should be")

    async def go() -> int:
        client = AsyncRedis.from_url(settings.redis_url or "")
        counter = ExposureCounter(client, EventLog(FolderStore(blocked)), SECRET.encode(), "c1")
        handled = await counter.run_once()
        await client.aclose()
        return handled

    assert asyncio.run(go()) == 1
    assert redis.xpending(EXPOSURES_STREAM, EXPOSURES_GROUP)["pending"] == 1
    assert read_totals(redis, EXPERIMENT.id, 1)["control"].exposures == 1  # counted once...
    redis.xgroup_setid(EXPOSURES_STREAM, EXPOSURES_GROUP, "0")  # ...delivered again:
    count(dataclasses.replace(settings))
    assert read_totals(redis, EXPERIMENT.id, 1)["control"].exposures == 1  # not twice
    assert [m["userId"] for m in exposures_logged(settings)] == ["dan"]


def test_exposures_count_per_placement_and_the_users_first_one_is_viewed_once(
        settings: Settings, redis: Redis) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    now = int(time.time() * 1000)
    add_entry(redis, f"{now + 5}|hero|rollout-1|treatment|kim",
              f"{now}|cta|rollout-1|treatment|kim", f"{now + 9}|cta|rollout-1|treatment|kim",
              f"{now}|hero|rollout-1|control|lou")
    count(settings)
    for scope in (1, "all"):
        counts = read_counts(redis, EXPERIMENT.id, scope)
        treated = counts.overall["treatment"].of("click_through")
        assert (treated.users, treated.exposures, treated.exposures_squared) == (1, 3, 9)
        assert {p: (by_arm["treatment"].of("conversion").exposures,
                    by_arm["control"].of("conversion").exposures)
                for p, by_arm in counts.placements.items()} == {"cta": (2, 0), "hero": (1, 1)}
    tag = user_tag(SECRET.encode(), "kim")
    assert redis.hget(arm_users_key(EXPERIMENT.id, 1), tag) == b"3,0,0;cta=2,0,0;hero=1,0,0"
    viewed = {m["userId"]: m["properties"]["placement"] for m in exposures_logged(settings)}
    assert viewed == {"kim": "cta", "lou": "hero"}  # each user's earliest, once


def test_forget_removes_the_users_counter_fields_and_keeps_the_sums(
        settings: Settings, redis: Redis) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())
    now = int(time.time() * 1000)
    add_entry(redis, f"{now}|hero|rollout-1|control|erin", f"{now}|cta|rollout-1|control|erin",
              f"{now}|hero|rollout-1|control|finn")
    count(settings)
    tags = {who: user_tag(SECRET.encode(), who) for who in ("erin", "finn")}

    async def go() -> None:
        client = AsyncRedis.from_url(settings.redis_url or "")
        await record_engagement(client, [ArmEngagement(EXPERIMENT.id, "control", tags["erin"],
                                                       "cta", "conversion")])
        for scope in (1, "all"):  # her counts, over the placements and on each
            assert await client.hget(arm_users_key(EXPERIMENT.id, scope), tags["erin"]) == \
                b"2,0,1;hero=1,0,0;cta=1,0,1"
        assert settings.origin_dir is not None
        await forget(client, EventLog(FolderStore(settings.origin_dir)), SECRET.encode(),
                     ["erin"], [], 3600)
        await client.aclose()

    asyncio.run(go())
    for scope in (1, "all"):
        assert redis.hget(arm_users_key(EXPERIMENT.id, scope), tags["erin"]) is None
        assert redis.hget(arm_users_key(EXPERIMENT.id, scope), tags["finn"]) == \
            b"1,0,0;hero=1,0,0"
        assert not any(tags["erin"].encode() in value
                       for value in redis.hvals(arm_users_key(EXPERIMENT.id, scope)))
    counts = read_counts(redis, EXPERIMENT.id, 1)  # the sums keep her contribution
    assert counts.overall["control"].of("click_through").users == 2
    assert counts.overall["control"].conversions == 1
    assert counts.placements["cta"]["control"].conversions == 1


def test_a_stream_that_disappears_is_created_again_on_the_next_round(
        settings: Settings, redis: Redis) -> None:
    redis.hset(EXPERIMENTS, EXPERIMENT.id, EXPERIMENT.dumps())

    async def go() -> list[int]:
        client = AsyncRedis.from_url(settings.redis_url or "")
        assert settings.origin_dir is not None
        counter = ExposureCounter(client, EventLog(FolderStore(settings.origin_dir)),
                                  SECRET.encode(), "c1")
        handled = [await counter.run_once()]
        redis.delete(EXPOSURES_STREAM)  # as a Redis that restarted empty
        handled.append(await counter.run_once())  # NOGROUP: noted, not raised
        add_entry(redis, f"{int(time.time() * 1000)}|hero|rollout-1|control|gil")
        handled.append(await counter.run_once())  # the group again, from the stream's start
        await client.aclose()
        return handled

    assert asyncio.run(go()) == [0, 0, 1]
    assert read_totals(redis, EXPERIMENT.id, 1)["control"].exposures == 1


def test_decided_served_and_clicked_the_arm_counters_hold_the_users_pair(
        ingest, drain, decision, redis: Redis, worker_settings: Settings) -> None:
    register(worker_settings.origin_dir)
    e = experiment(step_index=2)
    store(redis, e)
    secret = worker_settings.key_secret_bytes
    users = ids_by_arm(e, secret, "loop", each=1)
    treated, control = users["treatment"][0], users["control"][0]
    ingest([session(u, f"s-{u}") for u in (treated, control)])
    drain()
    record = decision(treated, "hero")
    assert record is not None and (record.arm, record.experiment) == ("treatment", e.id)
    now = int(time.time() * 1000)
    add_entry(redis, *(f"{now}|hero|{e.id}|treatment|{treated}" for _ in range(2)))  # served
    later = NOW + dt.timedelta(minutes=1)
    ingest([track(u, "Variant Clicked", f"click-{u}", later, placement="hero",
                  variant="trail-running") for u in (treated, control)]
           + [track(treated, "Variant Converted", "bought", later, placement="hero",
                    variant="trail-running")])
    drain()
    treatment, control_totals = (read_totals(redis, e.id, 2)[arm]
                                 for arm in ("treatment", "control"))
    assert (treatment.users, treatment.exposures, treatment.clicks,
            treatment.exposures_times_clicks) == (1, 2, 1, 2)
    assert control_totals.clicks == 0  # a click without an exposure counts for no one
    assert read_totals(redis, e.id, "all")["treatment"] == treatment
    converted = read_totals(redis, e.id, 2, metric="conversion")["treatment"]
    assert (converted.users, converted.exposures, converted.clicks,
            converted.exposures_times_clicks) == (1, 2, 1, 2)  # y: conversions
    hero = read_counts(redis, e.id, "all").placements["hero"]["treatment"]
    assert hero.of("click_through") == treatment and hero.of("conversion") == converted


def test_the_personalization_comparison_counts_in_step_0_with_arms_holdout_and_treatment(
        settings: Settings, redis: Redis) -> None:
    now = int(time.time() * 1000)
    add_entry(redis, f"{now}|hero|personalization|holdout|hal",
              f"{now}|cta|personalization|treatment|ivy",
              f"{now}|hero|personalization|control|jo")  # not one of its arms
    counter = count(settings)
    assert outcome(counter, "wrong_arm") == 1
    totals = read_totals_of(redis, "personalization", 0, ("holdout", "treatment"))
    assert (totals["holdout"].exposures, totals["treatment"].exposures) == (1, 1)
    names = {m["userId"]: m["properties"]["variation_name"] for m in exposures_logged(settings)}
    assert names == {"hal": "holdout (default content)", "ivy": "treatment (personalized)"}


def read_totals_of(redis: Redis, experiment: str, step: int | str,
                   arms: tuple[str, ...]) -> dict[str, ArmTotals]:
    fields = [f.name for f in dataclasses.fields(ArmTotals) if f.name != "arm"]
    return {arm: ArmTotals(arm, *(int(v or 0) for v in redis.hmget(
        arm_totals_key(experiment, step, arm), fields))) for arm in arms}


def test_what_the_edge_served_an_anonymous_id_counts_for_the_person_after_the_login(
        ingest, drain, redis: Redis, worker_settings: Settings) -> None:
    register(worker_settings.origin_dir)
    e = experiment(step_index=2)
    store(redis, e)
    secret = worker_settings.key_secret_bytes
    anonymous = ids_by_arm(e, secret, "cookie", each=1)["treatment"][0]
    known = "member-42"
    ingest([session(None, "s-anon", anonymous=anonymous)])
    drain()
    ingest([track(known, "Signed In", "login", NOW + dt.timedelta(seconds=5),
                  anonymous=anonymous)])  # one message with both ids: the login merges
    drain()
    now = int(time.time() * 1000)
    # the page still looks decisions up by its cookie: the edge names the anonymous id
    add_entry(redis, *(f"{now}|hero|{e.id}|treatment|{anonymous}" for _ in range(3)))
    ingest([track(known, "Variant Clicked", "click", NOW + dt.timedelta(minutes=1),
                  placement="hero", variant="trail-running")])
    drain()
    treatment = read_totals(redis, e.id, 2)["treatment"]
    assert (treatment.users, treatment.exposures, treatment.clicks,
            treatment.exposures_times_clicks) == (1, 3, 1, 3)  # one person's pair
    fields = redis.hgetall(arm_users_key(e.id, 2))
    assert set(fields) == {user_tag(secret, known).encode()}
    asyncio.run(_forget(worker_settings, known))
    assert redis.hgetall(ARM_OWNERS) == {}  # forgetting the person forgets the link


async def _forget(settings: Settings, user: str) -> None:
    client = AsyncRedis.from_url(settings.redis_url or "")
    assert settings.origin_dir is not None
    await forget(client, EventLog(FolderStore(settings.origin_dir)), SECRET.encode(), [user],
                 ["hero", "cta"], 3600)
    await client.aclose()
