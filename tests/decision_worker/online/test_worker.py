"""The worker against a real Redis: events in through the ingest path, decisions out."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.keys import CONSUMER_GROUP, DEAD_LETTER_STREAM, EVENTS_STREAM, profile_key
from decision_worker.online.batch import BatchProcessor
from decision_worker.online.redecide_schedule import enqueue_due
from decision_worker.online.worker import Worker
from decision_worker.ranking.ranker import BaselineRanker
from edge_functions.bucketing import in_holdout
from edge_functions.keys import decision_key, user_tag

from ..conftest import NOW, track


def clicks_on(user: str | None, variant: str, n: int, prefix: str,
              anonymous: str | None = None, placement: str = "hero") -> list[dict]:
    """n views and n clicks of one variant: a user who clearly likes its category."""
    out = []
    for i in range(n):
        at = NOW - dt.timedelta(minutes=30 - i)
        out.append(track(user, "Variant Viewed", f"{prefix}-v{i}", at, anonymous,
                         placement=placement, variant=variant, position=0))
        out.append(track(user, "Variant Clicked", f"{prefix}-c{i}", at, anonymous,
                         placement=placement, variant=variant, position=0))
    return out


def session(user: str | None, message_id: str, anonymous: str | None = None,
            at: dt.datetime = NOW, **context) -> dict:
    message = track(user, "Session Started", message_id, at, anonymous)
    if context:
        message["context"] = context
    return message


def not_held(prefix: str) -> str:
    return next(f"{prefix}-{i}" for i in range(1000) if not in_holdout(f"{prefix}-{i}", 0.1))


def test_session_start_decides_every_placement(ingest, drain, decision) -> None:
    user = not_held("fan")
    ingest(clicks_on(user, "trail-running", 3, "h") + [session(user, "s1")])
    worker = drain()
    hero, cta = decision(user, "hero"), decision(user, "cta")
    assert hero is not None and cta is not None
    assert hero.ranked[0] == "trail-running"  # the category the user clicks
    assert cta.ranked[0] == "free-shipping"  # same category, other placement
    assert "evergreen" in hero.ranked and hero.arm == "treatment"  # the default: a fallback
    assert hero.model_version == BaselineRanker.version
    assert worker.totals.users_decided == 1 and worker.totals.decisions == 2


def test_cold_start_user_gets_popularity_and_default_last(ingest, drain, decision) -> None:
    user = not_held("new")
    ingest([session(user, "s-new")])
    drain()
    hero = decision(user, "hero")
    # no history, no popularity: nothing beats the editor's default, which leads
    assert hero is not None and hero.ranked[0] == "evergreen"
    # everyone else clicking winter-camping makes it the popular choice for a newcomer
    crowd = []
    for i in range(20):
        crowd += clicks_on(f"crowd-{i}", "winter-camping", 5, f"crowd{i}")
    ingest(crowd)
    drain()
    other = not_held("newer")
    ingest([session(other, "s-newer")])
    drain()
    assert decision(other, "hero").ranked[0] == "winter-camping"


def test_bad_entries_do_not_block_good_ones(ingest, drain, decision, redis: Redis) -> None:
    user = not_held("good")
    bad = [{"type": "track", "userId": "x", "messageId": "no-event"},
           {"type": "screen", "userId": "x", "messageId": "unknown-type"},
           {"type": "track", "event": "Session Started", "messageId": "no-user"},
           {"type": "track", "event": "Session Started", "userId": ["x"],
            "messageId": "wrong-type"},
           track("x", "Session Started", "bad-time") | {"timestamp": "yesterday"},
           track("x", "Variant Clicked", "bad-variant", placement="hero", variant="../etc")]
    result = ingest(bad + [session(user, "good-1")])
    assert result.accepted == 1
    assert sorted((r.index, r.field) for r in result.rejections) == [
        (0, "event"), (1, "type"), (2, "userId"), (3, "userId"), (4, "timestamp"),
        (5, "properties.variant")]
    # and entries that reach the stream broken (another producer, a bug) are dead-lettered
    redis.xadd(EVENTS_STREAM, {"m": b"{not json"})
    redis.xadd(EVENTS_STREAM, {"m": json.dumps({"type": "track", "receivedAt": "x"})})
    drain()
    assert decision(user, "hero") is not None
    dead = [fields for _, fields in redis.xrange(DEAD_LETTER_STREAM)]
    assert len(dead) == 6 + 2
    assert all(f[b"reason"] for f in dead)
    assert redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)["pending"] == 0


def test_anonymous_history_counts_after_login(ingest, drain, decision, redis: Redis,
                                              worker_settings) -> None:
    anonymous, user = not_held("anon"), not_held("member")
    ingest(clicks_on(None, "winter-camping", 3, "a", anonymous) + [session(None, "a-s",
                                                                          anonymous)])
    drain()
    assert decision(anonymous, "hero").ranked[0] == "winter-camping"
    assert decision(user, "hero") is None
    # login: identify links the anonymous id to the user; a new session as the user
    ingest([{"type": "identify", "userId": user, "anonymousId": anonymous, "messageId": "id-1",
             "traits": {"plan": "pro"}, "timestamp": NOW.isoformat()},
            session(user, "u-s")])
    drain()
    known = decision(user, "hero")
    assert known is not None and known.ranked[0] == "winter-camping"
    # the anonymous id now sees the known user's decision (same record), not its own
    assert decision(anonymous, "hero") == known
    # and later anonymous-only events land in the user's profile, and decide for the user
    ingest(clicks_on(None, "trail-running", 6, "late", anonymous) + [session(None, "a-s2",
                                                                            anonymous)])
    drain()
    secret = worker_settings.key_secret_bytes
    profile = json.loads(redis.get(profile_key(user_tag(secret, user))))
    # decayed counts (1-day window): events of the last half hour weigh just under 1 each
    assert profile["c"]["running"][2] == pytest.approx(6, rel=0.01)
    assert profile["c"]["camping"][2] == pytest.approx(3, rel=0.01)
    assert profile["s"] == 3 and profile["tr"] == {"plan": "pro"}
    merged = json.loads(redis.get(profile_key(user_tag(secret, anonymous))))
    assert merged["mi"] == user_tag(secret, user)
    assert decision(anonymous, "hero") == decision(user, "hero") != known


def test_duplicate_message_id_is_processed_once(ingest, drain, redis: Redis,
                                                worker_settings) -> None:
    user = not_held("dup")
    message = track(user, "Variant Clicked", "click-1", placement="hero", variant="trail-running")
    assert ingest([message, message]).accepted == 1
    assert ingest([message]).duplicates == 1
    drain()
    profile = json.loads(redis.get(profile_key(user_tag(worker_settings.key_secret_bytes, user))))
    assert profile["t"][2] == 1.0  # one click in the 1-day window


def test_redelivered_entry_counts_once_and_writes_the_same_decision(
        ingest, redis: Redis, worker_settings) -> None:
    user = not_held("redo")
    ingest(clicks_on(user, "trail-running", 2, "r") + [session(user, "r-s")])
    entries = redis.xrange(EVENTS_STREAM)
    tag = user_tag(worker_settings.key_secret_bytes, user)

    async def process_twice() -> tuple[list[bytes | None], list[bytes | None]]:
        from decision_worker.online.stream_entries import decode_entry
        from decision_worker.ranking.candidates import Catalog
        from edge_functions.keys import MANIFEST_KEY

        client = AsyncRedis.from_url(worker_settings.redis_url)
        processor = BatchProcessor(client, worker_settings, BaselineRanker())
        processor.catalog = Catalog.from_bytes(await client.get(MANIFEST_KEY))
        items = [(i.decode(), decode_entry(f)) for i, f in entries]
        snapshots = []
        for _ in range(2):  # a worker that died before XACK: the same entries again
            await processor.process(items)
            snapshots.append([await client.get(decision_key(tag, "hero")),
                              await client.get(profile_key(tag))])
        await client.aclose()
        return snapshots[0], snapshots[1]

    first, second = asyncio.run(process_twice())
    assert first[0] == second[0] and first[0] is not None  # identical decision record
    p1, p2 = json.loads(first[1]), json.loads(second[1])
    assert p1["t"] == p2["t"] and p1["c"] == p2["c"]  # nothing counted twice
    assert p2["v"] == p1["v"] + 1


def test_holdout_user_always_gets_the_default(ingest, drain, decision, redis: Redis,
                                              worker_settings) -> None:
    held = next(f"h-{i}" for i in range(1000) if in_holdout(f"h-{i}", 0.1))
    treated = not_held("t")
    ingest(clicks_on(held, "trail-running", 4, "held") + [session(held, "held-s")]
           + clicks_on(treated, "trail-running", 4, "tr") + [session(treated, "tr-s")])
    drain()
    for placement, default in (("hero", "evergreen"), ("cta", "join")):
        record = decision(held, placement)
        assert record is not None and record.ranked == (default,) and record.arm == "holdout"
    assert decision(treated, "hero").ranked[0] == "trail-running"
    # share 0: nobody is held out; the same user is decided normally
    drain(dataclasses.replace(worker_settings, holdout_share=0.0))
    ingest([session(held, "held-s2", at=NOW + dt.timedelta(seconds=1))])
    drain(dataclasses.replace(worker_settings, holdout_share=0.0))
    assert decision(held, "hero").arm == "treatment"


def test_business_rules_schedule_locale_and_conversions(ingest, drain, decision) -> None:
    spanish, english = not_held("es"), not_held("en")
    for user, locale in ((spanish, "es-MX"), (english, "en-GB")):
        ingest(clicks_on(user, "climbing-es", 5, f"{user}-c") + clicks_on(
            user, "spring-sale", 9, f"{user}-s") + [session(user, f"{user}-s", locale=locale)])
    drain()
    assert decision(spanish, "hero").ranked[0] == "climbing-es"  # Spanish content for es-MX
    assert "climbing-es" not in decision(english, "hero").ranked  # never for en-GB
    assert all("spring-sale" not in decision(u, "hero").ranked for u in (spanish, english))
    # a conversion on free-shipping: not offered to that user again
    ingest(clicks_on(english, "free-shipping", 3, "fs", placement="cta")
           + [track(english, "Variant Converted", "conv", placement="cta",
                    variant="free-shipping")])
    drain()
    assert "free-shipping" not in decision(english, "cta").ranked


def test_scheduled_refresh_renews_decisions_near_expiry(ingest, drain, decision, redis: Redis,
                                                        worker_settings) -> None:
    settings = dataclasses.replace(worker_settings, decision_ttl_s=10, redecide_share=0.5)
    active, quiet = not_held("active"), not_held("quiet")
    ingest([session(active, "act"),
            session(quiet, "qui", at=NOW - dt.timedelta(days=10))])
    drain(settings)
    secret = settings.key_secret_bytes
    key = decision_key(user_tag(secret, active), "hero")
    time.sleep(1.2)
    before = redis.pttl(key)
    assert 0 < before < 9000

    async def schedule(at: float) -> int:
        client = AsyncRedis.from_url(settings.redis_url)
        try:
            return await enqueue_due(client, settings, now=at, force=True)
        finally:
            await client.aclose()

    assert asyncio.run(schedule(time.time())) == 0  # nothing is due yet
    assert asyncio.run(schedule(time.time() + 6)) == 2  # both are due 5 s after deciding
    drain(settings)
    assert redis.pttl(key) > 9000  # renewed with a full TTL
    assert decision(active, "hero").decided_at >= int(time.time()) + 5
    # the quiet user (no event in the active window) is dropped, not refreshed
    assert redis.zscore("{ep:refresh}:due", user_tag(secret, quiet)) is None
    assert redis.zscore("{ep:refresh}:due", user_tag(secret, active)) is not None


def test_late_events_are_not_applied_and_order_does_not_matter(ingest, drain, redis: Redis,
                                                                worker_settings) -> None:
    user = not_held("late")
    events = clicks_on(user, "trail-running", 3, "o")
    ingest(list(reversed(events)) + [track(user, "Variant Clicked", "ancient",
                                           NOW - dt.timedelta(days=30), placement="hero",
                                           variant="trail-running")])
    worker = drain()
    assert worker.totals.late == 1 and worker.totals.applied == 6
    other = not_held("inorder")
    ingest(clicks_on(other, "trail-running", 3, "p"))
    drain()
    secret = worker_settings.key_secret_bytes
    a = json.loads(redis.get(profile_key(user_tag(secret, user))))
    b = json.loads(redis.get(profile_key(user_tag(secret, other))))
    assert a["c"] == b["c"]  # same events, reversed arrival: the same counters


def test_poison_entry_is_dead_lettered_after_bounded_attempts(ingest, drain, decision,
                                                              redis: Redis,
                                                              worker_settings) -> None:
    class BrokenRanker(BaselineRanker):
        def score(self, rows):
            raise RuntimeError("model exploded")

    settings = dataclasses.replace(worker_settings, max_attempts=2, claim_idle_s=0.05)
    user = not_held("poison")
    ingest([session(user, "p-s")])
    deadline = time.monotonic() + 10
    while not redis.xlen(DEAD_LETTER_STREAM) and time.monotonic() < deadline:
        drain(settings, ranker=BrokenRanker())
        time.sleep(0.06)
    dead = redis.xrange(DEAD_LETTER_STREAM)
    assert len(dead) == 1 and dead[0][1][b"reason"] == b"failed 2 times"
    assert redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)["pending"] == 0
    # the worker kept going: the next event, with a working model, is decided
    ingest([session(user, "p-s2")])
    drain(settings)
    assert decision(user, "hero") is not None


def test_worker_picks_up_a_new_catalog_without_restart(ingest, redis: Redis, decision,
                                                       worker_settings) -> None:
    from ..conftest import write_catalog

    user = not_held("cat")

    async def scenario() -> None:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, consumer="live")
        await worker.run(burst=True)
        write_catalog(redis, {"footer": ("plain", {"plain": {"category": "general"}})})
        await asyncio.to_thread(ingest, [session(user, "cat-s")])
        await worker.run(burst=True)
        await client.aclose()

    asyncio.run(scenario())
    assert decision(user, "footer").ranked == ("plain",)


def test_worker_recreates_a_deleted_stream_group_and_keeps_going(ingest, redis: Redis,
                                                                 decision,
                                                                 worker_settings) -> None:
    user = not_held("again")

    async def scenario() -> None:
        client = AsyncRedis.from_url(worker_settings.redis_url)
        worker = Worker(client, worker_settings, consumer="survivor")
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)
        redis.delete(EVENTS_STREAM)  # an operator's mistake: stream and group are gone
        await asyncio.sleep(0.3)
        await asyncio.to_thread(ingest, [session(user, "again-s")])
        for _ in range(100):
            if decision(user, "hero") is not None:
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(task, 5)
        await client.aclose()

    asyncio.run(scenario())
    assert decision(user, "hero") is not None


def test_anonymous_events_in_the_same_batch_as_the_login_count_for_the_user(
        ingest, drain, redis: Redis, worker_settings) -> None:
    anonymous, user = not_held("anon-b"), not_held("member-b")
    ingest(clicks_on(None, "winter-camping", 2, "same", anonymous)
           + [{"type": "identify", "userId": user, "anonymousId": anonymous,
               "messageId": "id-same", "timestamp": NOW.isoformat()}, session(user, "s-same")])
    drain()
    secret = worker_settings.key_secret_bytes
    profile = json.loads(redis.get(profile_key(user_tag(secret, user))))
    assert profile["c"]["camping"][2] == pytest.approx(2, rel=0.01)
    assert redis.get(profile_key(user_tag(secret, anonymous))) is not None  # the marker
