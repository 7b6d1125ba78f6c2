"""Exposures at the edge: a served decision of an experiment (its variant, or the holdout's
default) is queued and reaches the exposures stream riding with a lookup (no round trip of
its own), or alone when idle; nothing else is logged; a full queue or a dead store drops
and counts, and serving never waits."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.asyncio import ConnectionPool
from redis.asyncio import Redis as AsyncRedis

from edge_functions.app import ServingApp, create_app
from edge_functions.circuit_breaker import CircuitBreaker
from edge_functions.decision_record import DecisionRecord, encode
from edge_functions.decision_store import BatchedDecisionReader
from edge_functions.exposures import FIELD, ExposureQueue, parse_line
from edge_functions.http_protocol import http_protocol
from edge_functions.keys import EXPOSURES_STREAM, decision_key, user_tag
from tests.conftest import SECRET, Settings, free_port, wait_until
from tests.edge_functions.test_store_faults import publish_example

EXPERIMENT = "rollout-1"


def store(redis: Redis, user: str, placement: str, experiment: str = EXPERIMENT,
          arm: str = "treatment", ranked: tuple[str, ...] = ("trail-running",)) -> None:
    record = DecisionRecord(ranked, "m-2", arm, int(time.time()), experiment)
    redis.set(decision_key(user_tag(SECRET.encode(), user), placement), encode(record), ex=600)


def stream_lines(redis: Redis) -> list[str]:
    return [line for _, fields in redis.xrange(EXPOSURES_STREAM)
            for line in fields[FIELD].decode().split("\n")]


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def get(base: str, path: str) -> httpx.Response:
    return httpx.get(base + path, follow_redirects=False)


@pytest.fixture
def edge(settings: Settings, serve_app: Callable[..., str], redis: Redis,
         ) -> Callable[..., tuple[str, ServingApp]]:
    """An edge app on a real Redis with the example catalog published; returns its base URL
    and the app (its exposure queue can be tuned)."""

    def start(redis_url: str | None = None, **changes: Any) -> tuple[str, ServingApp]:
        port = free_port()
        tuned = dataclasses.replace(settings, cdn_base=f"http://127.0.0.1:{port}",
                                    redis_url=redis_url or settings.redis_url, **changes)
        app = create_app(tuned)
        base = serve_app(app, port, http_protocol(tuned))
        publish_example(Redis.from_url(tuned.redis_url or ""), tuned.origin_dir, base)
        return base, app

    return start


def test_a_served_decision_of_an_experiment_is_one_exposure(edge, redis: Redis) -> None:
    base, _ = edge(exposure_flush_s=0.05)
    store(redis, "alice", "hero")
    before = int(time.time() * 1000)
    response = get(base, "/p/hero?uid=alice")
    assert response.headers["x-edgepick-source"] == "decision"
    wait_until(lambda: stream_lines(redis), what="the exposure to be sent")
    time.sleep(0.2)  # nothing more follows
    [line] = stream_lines(redis)
    exposure = parse_line(line)
    assert (exposure.placement, exposure.experiment, exposure.arm, exposure.user_id) == \
        ("hero", EXPERIMENT, "treatment", "alice")
    assert before <= exposure.at_ms <= int(time.time() * 1000)
    assert metric(base, "edgepick_edge_exposures_sent_total") == 1


def test_the_holdout_of_the_personalization_comparison_is_exposed_with_its_default(
        edge, redis: Redis) -> None:
    base, _ = edge(exposure_flush_s=0.05)
    store(redis, "held", "hero", experiment="personalization", arm="holdout",
          ranked=("evergreen",))
    response = get(base, "/p/hero?uid=held")
    assert response.headers["x-edgepick-source"] == "holdout"
    assert "variant-evergreen." in response.headers["location"]
    wait_until(lambda: stream_lines(redis), what="the exposure to be sent")
    [line] = stream_lines(redis)
    assert (parse_line(line).experiment, parse_line(line).arm) == ("personalization", "holdout")


def test_the_batch_route_exposes_each_served_placement(edge, redis: Redis) -> None:
    base, _ = edge(exposure_flush_s=0.05)
    store(redis, "bob", "hero", arm="control")
    store(redis, "bob", "cta", ranked=("free-shipping",))
    store(redis, "bob", "email-header", ranked=("not-published",))  # the default: no exposure
    response = httpx.get(f"{base}/p?placements=hero,cta,email-header&uid=bob")
    assert response.status_code == 200
    wait_until(lambda: len(stream_lines(redis)) == 2, what="two exposures")
    assert sorted((e.placement, e.arm, e.user_id) for e in map(parse_line, stream_lines(redis))) \
        == [("cta", "treatment", "bob"), ("hero", "control", "bob")]


def test_nothing_but_served_decisions_of_experiments_is_exposed(edge, redis: Redis) -> None:
    base, _ = edge(exposure_flush_s=0.05)
    redis.set(decision_key(user_tag(SECRET.encode(), "v1"), "hero"),
              encode(DecisionRecord(("trail-running",), "m-1", "treatment", 1)))
    redis.set(decision_key(user_tag(SECRET.encode(), "holdout"), "hero"),
              encode(DecisionRecord(("evergreen",), "m-1", "holdout", 1)))  # no experiment
    store(redis, "gone", "hero", ranked=("not-published",))
    redis.set(decision_key(user_tag(SECRET.encode(), "corrupt"), "hero"),
              b"2|trail-running|m|treatment|1|")
    sources = {get(base, f"/p/hero?uid={user}").headers["x-edgepick-source"]
               for user in ("v1", "holdout", "gone", "corrupt", "nobody")}
    sources.add(get(base, "/p/hero").headers["x-edgepick-source"])
    opted_out = httpx.get(f"{base}/p/hero?uid=alice", headers={"Sec-GPC": "1"},
                          follow_redirects=False)
    store(redis, "alice", "hero")
    sources.add(opted_out.headers["x-edgepick-source"])
    assert sources == {"decision", "holdout", "not-eligible", "corrupt-record", "no-decision",
                       "no-user", "opted-out"}
    time.sleep(0.3)
    assert redis.exists(EXPOSURES_STREAM) == 0
    assert metric(base, "edgepick_edge_exposures_queued_total") == 0


def commands(redis: Redis) -> dict[str, int]:
    return {k: v["calls"] for k, v in redis.info("commandstats").items()}


def test_exposures_ride_with_the_next_lookup_without_a_round_trip_of_their_own(
        edge, redis: Redis) -> None:
    base, app = edge(exposure_flush_s=30)
    app.state.edge.exposures.ride_after_s = 0  # ride with the very next lookup
    store(redis, "alice", "hero")
    get(base, "/p/hero?uid=alice")
    reader = app.state.edge.reader
    trips, before = reader.round_trips, commands(redis)
    get(base, "/p/hero?uid=alice")  # carries the first request's exposure
    after = commands(redis)
    assert reader.round_trips - trips == 1
    assert after["cmdstat_mget"] - before["cmdstat_mget"] == 1
    assert after["cmdstat_xadd"] - before.get("cmdstat_xadd", 0) == 1
    assert len(stream_lines(redis)) == 1


class CountingConnection:
    """Counts the writes to the socket: a pipeline is one, whatever it holds. Mixed into
    the connection class the URL asks for (TCP, or the embedded server's unix socket)."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)  # type: ignore[misc]


def counting_pool(url: str) -> ConnectionPool:
    pool = ConnectionPool.from_url(url)
    pool.connection_class = type("Counting", (CountingConnection, pool.connection_class), {})
    return pool


def test_one_flush_sends_its_lookups_and_the_queued_exposures_in_one_write(
        redis_url: str, redis: Redis) -> None:
    async def run() -> tuple[int, list[Any]]:
        pool = counting_pool(redis_url)
        client = AsyncRedis(connection_pool=pool)
        await client.ping()  # the connection's handshake is not the flush's
        queue = ExposureQueue(ride_min=3)
        reader = BatchedDecisionReader(client, 1.0, CircuitBreaker(3, 1.0), queue)
        for user in ("a", "b", "c"):
            queue.add(user, "hero", EXPERIMENT, "control")
        CountingConnection.sends = 0
        lookups = await asyncio.gather(*(reader.lookup([f"k{i}"]) for i in range(5)))
        sends = CountingConnection.sends
        await reader.close()
        await client.aclose()
        await pool.disconnect()
        return sends, lookups

    sends, lookups = asyncio.run(run())
    assert sends == 1
    assert all(lookup.fault is None for lookup in lookups)
    assert [parse_line(line).user_id for line in stream_lines(redis)] == ["a", "b", "c"]


def test_a_refused_exposures_batch_does_not_fail_the_lookup(redis_url: str,
                                                             redis: Redis) -> None:
    redis.set(EXPOSURES_STREAM, b"not a stream")  # XADD gets WRONGTYPE
    redis.set("k1", b"v")

    async def run() -> tuple[Any, ExposureQueue]:
        client = AsyncRedis.from_url(redis_url)
        queue = ExposureQueue(ride_min=1)
        reader = BatchedDecisionReader(client, 1.0, CircuitBreaker(3, 1.0), queue)
        queue.add("a", "hero", EXPERIMENT, "control")
        lookup = await reader.lookup(["k1"])
        await reader.close()
        await client.aclose()
        return lookup, queue

    lookup, queue = asyncio.run(run())
    assert (lookup.values, lookup.fault) == ([b"v"], None)
    assert (queue.sent, queue.dropped["store-error"]) == (0, 1)


def test_a_full_queue_drops_and_counts(edge, redis: Redis) -> None:
    base, app = edge(exposure_buffer=2, exposure_flush_s=30)
    app.state.edge.exposures.ride_after_s = 60
    store(redis, "alice", "hero")
    for _ in range(5):
        assert get(base, "/p/hero?uid=alice").headers["x-edgepick-source"] == "decision"
    assert metric(base, "edgepick_edge_exposures_queued_total") == 2
    assert metric(base, 'edgepick_edge_exposures_dropped_total{reason="buffer-full"}') == 3


def test_a_dead_store_drops_the_queue_and_serving_answers_defaults_at_once(
        edge, redis_process) -> None:
    base, app = edge(redis_url=redis_process.url, exposure_flush_s=0.5, store_budget_ms=15.0,
                     breaker_failures=3, breaker_cooldown_s=0.2)
    app.state.edge.exposures.ride_after_s = 60
    store(Redis.from_url(redis_process.url), "alice", "hero")
    for _ in range(3):
        assert get(base, "/p/hero?uid=alice").headers["x-edgepick-source"] == "decision"
    redis_process.stop()
    for _ in range(5):
        started = time.perf_counter()
        response = get(base, "/p/hero?uid=alice")
        assert time.perf_counter() - started < 0.5
        assert response.status_code == 302
        assert response.headers["x-edgepick-source"] in ("store-error", "store-timeout",
                                                         "circuit-open")
        assert "variant-evergreen." in response.headers["location"]
    wait_until(lambda: metric(base, 'edgepick_edge_exposures_dropped_total'
                                    '{reason="store-error"}') == 3, what="the drop counted")
    assert metric(base, "edgepick_edge_exposures_sent_total") == 0


def test_while_lookups_flow_exposures_only_ride_and_the_timer_sends_the_rest_when_idle(
        redis_url: str, redis: Redis) -> None:
    async def run() -> tuple[int, int, int]:
        client = AsyncRedis.from_url(redis_url)
        queue = ExposureQueue(ride_after_s=0.05, idle_flush_s=0.2)
        reader = BatchedDecisionReader(client, 1.0, CircuitBreaker(3, 1.0), queue)
        alone = 0
        send_alone = queue.send_alone
        assert send_alone is not None

        async def counted() -> None:
            nonlocal alone
            alone += 1
            await send_alone()

        queue.send_alone = counted
        for i in range(40):  # 0.8 s of traffic: a lookup, then its exposure, every 20 ms
            await reader.lookup(["k"])
            queue.add(f"user-{i}", "hero", EXPERIMENT, "control")
            await asyncio.sleep(0.02)
        during = alone
        await asyncio.sleep(0.4)  # no lookup comes: the timer sends what is left
        await reader.close()
        await client.aclose()
        return during, alone, queue.sent

    during, after, sent = asyncio.run(run())
    assert (during, after, sent) == (0, 1, 40)
    assert len(stream_lines(redis)) == 40
