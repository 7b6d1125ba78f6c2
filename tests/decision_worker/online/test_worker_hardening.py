"""The worker against what the API accepts and Redis losing data: whatever the API accepts,
the worker applies; nothing a client claims moves it outside its bounds; a worker keeps
deciding when the manifest vanishes and re-decides when Redis comes back empty (each test
here failed before its fix)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import random

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.keys import DEAD_LETTER_STREAM, EVENTS_STREAM, STATS_KEY, profile_key
from decision_worker.online import stream_upkeep
from decision_worker.online.metrics import WorkerMetrics
from decision_worker.online.worker import Worker
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY, user_tag

from ..conftest import NOW, track, write_catalog
from .test_worker import clicks_on, not_held, session


def test_an_unparseable_referrer_is_ignored_not_fatal(ingest, drain, decision,
                                                      redis: Redis) -> None:
    user = not_held("ref")
    result = ingest([session(user, "ref-s", page={"referrer": "http://[::1"})])
    assert result.accepted == 1
    worker = drain()
    assert decision(user, "hero") is not None
    assert worker.totals.users_decided == 1 and not redis.xlen(DEAD_LETTER_STREAM)


def test_a_client_clock_a_year_ahead_does_not_freeze_the_profile(ingest, drain, redis,
                                                                 worker_settings) -> None:
    user = not_held("clock")
    ahead = NOW + dt.timedelta(days=365)
    ingest([track(user, "Variant Clicked", "far", ahead, placement="hero",
                  variant="trail-running")])
    ingest(clicks_on(user, "winter-camping", 3, "now"))  # today's events still count
    worker = drain()
    assert worker.totals.late == 0 and worker.totals.applied == 7
    profile = json.loads(redis.get(profile_key(user_tag(worker_settings.key_secret_bytes,
                                                        user))))
    assert profile["u"] <= dt.datetime.now(dt.UTC).timestamp() + 300 + 5  # clamped


def test_schedules_are_checked_against_the_workers_clock(ingest, drain, decision, redis,
                                                         worker_settings) -> None:
    opens = (NOW + dt.timedelta(days=1)).isoformat()
    write_catalog(redis, {"hero": ("evergreen", {
        "evergreen": {"category": "general"},
        "launch": {"category": "running", "starts_at": opens}})})
    # A generous skew allowance, and a client that claims to be inside the window.
    settings = dataclasses.replace(worker_settings, clock_skew_s=3 * 86_400)
    user = not_held("early")
    inside = NOW + dt.timedelta(days=2)
    ingest(clicks_on(user, "launch", 5, "l") + [session(user, "early-s", at=inside)])
    drain(settings)
    assert decision(user, "hero").ranked == ("evergreen",)  # not before starts_at


def test_engagement_with_unknown_variants_does_not_grow_the_counts(ingest, drain,
                                                                   redis) -> None:
    ingest(clicks_on("counted", "trail-running", 1, "known"))
    drain()
    before = redis.hlen(STATS_KEY)
    rng = random.Random(5)
    junk = [track(f"u{i}", "Variant Clicked", f"junk-{i}", placement=f"p{rng.randrange(10**6)}",
                  variant=f"v{rng.randrange(10**6)}") for i in range(1000)]
    for start in range(0, len(junk), 250):
        ingest(junk[start:start + 250])
    drain()
    assert redis.hlen(STATS_KEY) == before > 0


def test_the_worker_keeps_its_catalog_when_the_manifest_vanishes(ingest, redis, decision,
                                                                  worker_settings) -> None:
    first, second = not_held("before"), not_held("after")

    async def scenario() -> Worker:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, consumer="keeper")
        await asyncio.to_thread(ingest, [session(first, "kb")])
        await worker.run(burst=True)
        redis.delete(MANIFEST_KEY, MANIFEST_REV_KEY)  # Redis lost the manifest
        await asyncio.to_thread(ingest, [session(second, "ka")])
        await worker.run(burst=True)
        await client.aclose()
        return worker

    worker = asyncio.run(scenario())
    assert decision(first, "hero") is not None
    assert decision(second, "hero") is not None and decision(second, "cta") is not None
    assert worker.totals.users_decided == 2


def test_a_worker_without_a_manifest_reads_nothing_until_one_is_published(
        ingest, redis, decision, worker_settings) -> None:
    user = not_held("patient")
    redis.delete(MANIFEST_KEY, MANIFEST_REV_KEY)
    ingest([session(user, "wait-s")])

    async def scenario() -> None:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, consumer="patient")
        await worker.run(burst=True)
        assert redis.xlen(EVENTS_STREAM) == 1
        assert redis.xinfo_groups(EVENTS_STREAM)[0]["last-delivered-id"] == b"0-0"
        write_catalog(redis)
        await worker.run(burst=True)
        await client.aclose()

    asyncio.run(scenario())
    assert decision(user, "hero") is not None


def test_read_entries_are_trimmed_by_age_and_unread_ones_never(ingest, drain, redis,
                                                               worker_settings,
                                                               monkeypatch) -> None:
    monkeypatch.setattr(stream_upkeep, "STREAM_RETENTION_S", 0)
    ingest([session(f"trim-{i}", f"trim-{i}") for i in range(600)])
    drain()
    drain()  # the next run's housekeeping trims what the first one read
    assert redis.xlen(EVENTS_STREAM) < 200
    ingest([session(f"new-{i}", f"new-{i}") for i in range(600)])

    async def housekeeping_only() -> None:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        await stream_upkeep.measure_and_trim(client, WorkerMetrics())
        await client.aclose()

    asyncio.run(housekeeping_only())
    assert redis.xlen(EVENTS_STREAM) >= 600  # nobody has read them: nothing is trimmed
    redis.xadd(DEAD_LETTER_STREAM, {"reason": "old"}, id="1000-0")  # from 1970
    drain()
    assert redis.xlen(DEAD_LETTER_STREAM) == 0


def test_after_redis_comes_back_empty_every_session_start_is_decided_again(
        ingest, redis, decision, worker_settings) -> None:
    users = [not_held(f"wiped{i}") for i in range(3)]

    async def scenario() -> Worker:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, consumer="phoenix")
        await asyncio.to_thread(ingest, [session(u, f"w-{u}") for u in users])
        await worker.run(burst=True)
        redis.flushall()  # a restart without persistence: stream, markers, decisions gone
        await worker.run(burst=True)
        await client.aclose()
        return worker

    worker = asyncio.run(scenario())
    assert all(decision(u, "hero") is not None for u in users)
    assert worker.totals.users_decided == 6


def test_a_worker_started_while_redis_is_down_waits_and_then_decides(
        redis_process, worker_settings) -> None:
    from tests.conftest import wait_until

    from ..conftest import write_catalog as catalog_on

    settings = dataclasses.replace(worker_settings, redis_url=redis_process.url)
    user = not_held("early-bird")
    redis_process.stop()

    async def scenario() -> None:
        client = AsyncRedis.from_url(redis_process.url)
        worker = Worker(client, settings, consumer="early")
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(1.5)  # Redis refuses connections meanwhile
        assert not task.done()
        await asyncio.to_thread(redis_process.start)
        direct = Redis.from_url(redis_process.url)
        catalog_on(direct)
        direct.xadd(EVENTS_STREAM, {"m": json.dumps({
            **session(user, "early-s"), "receivedAt": NOW.isoformat()})})
        key = profile_key(user_tag(settings.key_secret_bytes, user))
        await asyncio.to_thread(wait_until, lambda: direct.get(key) is not None, 15,
                                "the worker to apply the session start")
        worker.stop()
        await asyncio.wait_for(task, 5)
        await client.aclose()
        direct.close()

    asyncio.run(scenario())
