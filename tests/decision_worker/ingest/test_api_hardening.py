"""The events API against hostile bodies and Redis faults: every refusal is a 4xx naming the
problem or a 503 with Retry-After, and every accepted message is in the log and the stream
exactly once (each test here failed before its fix)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import signal
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from decision_worker.api import create_api
from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import EVENTS_STREAM
from object_store.folder import FolderStore
from tests.conftest import RedisProcess, Settings, wait_until

NOW = dt.datetime.now(dt.UTC)


def message(i: int | str, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Session Started", "userId": f"user-{i}",
            "messageId": f"msg-{i}", "timestamp": NOW.isoformat(), **extra}


@pytest.fixture
def api(settings: Settings, redis: Redis, serve_app: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app(create_api(settings)), timeout=10) as client:
        yield client


def logged(settings: Settings) -> list[str]:
    """Every messageId line in the folder log (duplicates kept: the log is read raw)."""
    assert settings.origin_dir is not None
    ids = []
    for path in sorted((settings.origin_dir / "events").rglob("*.jsonl")):
        ids += [json.loads(line)["messageId"] for line in path.read_bytes().splitlines()]
    return ids


def streamed(redis: Redis) -> list[str]:
    return [json.loads(f[b"m"])["messageId"] for _, f in redis.xrange(EVENTS_STREAM)]


def post_raw(api: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return api.post("/v1/events", content=body,
                    headers={"content-type": "application/json", **headers})


def test_a_timestamp_that_overflows_into_year_10000_is_a_per_message_400(api, redis,
                                                                          settings) -> None:
    answer = api.post("/v1/events", json={"batch": [
        message(1), message(2, timestamp="9999-12-31T23:59:59-23:59")]})
    assert answer.status_code == 400
    assert answer.json()["accepted"] == 1
    assert [(r["index"], r["field"]) for r in answer.json()["rejected"]] == [(1, "timestamp")]
    assert streamed(redis) == ["msg-1"] and logged(settings) == ["msg-1"]


def test_sent_at_centuries_from_original_timestamp_is_a_400_not_a_500(api, redis,
                                                                      settings) -> None:
    skewed = {k: v for k, v in message(2).items() if k != "timestamp"}
    skewed.update(originalTimestamp="9999-01-01T00:00:00Z", sentAt="0001-01-01T00:00:00Z")
    answer = api.post("/v1/events", json={"batch": [message(1), skewed]})
    assert answer.status_code == 400, answer.text  # found by the fuzz tests: it was a 500
    assert [(r["index"], r["field"]) for r in answer.json()["rejected"]] == [(1, "sentAt")]
    assert streamed(redis) == ["msg-1"] and logged(settings) == ["msg-1"]


def test_a_lone_surrogate_is_refused_before_anything_is_written(api, redis, settings) -> None:
    body = json.dumps({"batch": [message(1), {**message(2), "messageId": "\ud800x"},
                                 message(3, properties={"x": "\udc00"})]}).encode()
    for _ in range(3):  # the sender retries: nothing is written twice
        answer = post_raw(api, body)
        assert answer.status_code == 400
        rejected = answer.json()["rejected"]
        assert [(r["index"], r["field"]) for r in rejected] == [(1, "messageId"),
                                                               (2, "properties.x")]
        assert "lone surrogate" in rejected[0]["reason"]
    assert streamed(redis) == ["msg-1"]
    assert logged(settings) == ["msg-1"]


@pytest.mark.parametrize("body,problem", [
    (b'{"batch": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nested too deeply"),
    (b'{"type": "track", "event": "X", "userId": "u", "properties": {"n": ' + b"9" * 5000
     + b"}}", "5000 digits"),
    (b'{"type": "identify", "userId": "u", "traits": {"plan": 1180591620717411303424}}',
     "64-bit integer"),
    (b'{"type": "track", "event": "X", "userId": "u", "properties": {"n": NaN}}', "NaN"),
    (b'{"type": "track", "event": "X", "userId": "u", "properties": {"n": -Infinity}}',
     "-Infinity"),
    (b'{"type": "track", "event": "X", "userId": "u", "properties": {"n": 1e400}}',
     "out of range"),
    (b'{"type": "track", "event": "X", "userId": NaN}', "NaN"),
    (b'\xff\xfe{}', "not UTF-8"),
])
def test_bodies_the_worker_could_not_store_are_a_400_naming_the_problem(
        api, redis, body: bytes, problem: str) -> None:
    answer = post_raw(api, body)
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["detail"]
    assert answer.json()["error"] == "invalid_request"
    assert not redis.exists(EVENTS_STREAM)
    assert api.post("/v1/events", json=message(9)).status_code == 200  # still serving


def test_gzip_bodies_are_accepted_and_other_encodings_refused_by_name(api, redis) -> None:
    body = json.dumps({"batch": [message(1), message(2)]}).encode()
    answer = post_raw(api, gzip.compress(body), **{"content-encoding": "gzip"})
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    deflated = post_raw(api, zlib.compress(body), **{"content-encoding": "deflate"})
    assert deflated.status_code == 415 and "'deflate'" in deflated.json()["detail"]
    bomb = gzip.compress(b" " * (20 * 1024 * 1024))  # 20 MB of spaces in ~20 KB
    too_big = post_raw(api, bomb, **{"content-encoding": "gzip"})
    assert too_big.status_code == 413 and "decompressed" in too_big.json()["detail"]
    broken = post_raw(api, gzip.compress(body)[:-9], **{"content-encoding": "gzip"})
    assert broken.status_code == 400 and "gzip" in broken.json()["detail"]
    assert streamed(redis) == ["msg-1", "msg-2"]


def test_event_time_is_clamped_to_the_time_received(api, redis) -> None:
    ahead = (NOW + dt.timedelta(days=365)).isoformat()
    assert api.post("/v1/events", json=message(1, timestamp=ahead)).status_code == 200
    stored = json.loads(redis.xrange(EVENTS_STREAM)[0][1][b"m"])
    assert stored["timestamp"] == ahead  # the message is kept as sent; its time is clamped
    from decision_worker.ingest.events import validate_message

    received = dt.datetime.fromisoformat(stored["receivedAt"].replace("Z", "+00:00"))
    event = validate_message(0, stored, received)
    assert event.timestamp == received + dt.timedelta(seconds=300)  # type: ignore[union-attr]


def test_errors_of_the_events_api_are_json(api) -> None:
    for answer in (api.get("/v1/events"), api.get("/nope"), api.get("/healthz/")):
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] in ("method_not_allowed", "not_found")
        assert answer.headers["cache-control"] == "private, no-store"
        assert "location" not in answer.headers


# -- Redis faults -------------------------------------------------------------------------


@dataclasses.dataclass
class Faulty:
    api: httpx.Client
    settings: Settings
    direct: Redis
    app: Any


@pytest.fixture
def faulty(settings: Settings, redis_process: RedisProcess,
           serve_app: Callable[..., str]) -> Iterator[Faulty]:
    """The API on a private redis-server the test may stop, freeze and restart."""
    settings = dataclasses.replace(settings, redis_url=redis_process.url, api_timeout_s=0.5)
    direct = Redis.from_url(redis_process.url)
    app = create_api(settings)
    with httpx.Client(base_url=serve_app(app), timeout=10) as client:
        yield Faulty(client, settings, direct, app)
    direct.close()


def test_redis_down_is_a_quick_503_and_the_first_request_after_it_returns_succeeds(
        faulty, redis_process: RedisProcess) -> None:
    api, settings, direct = faulty.api, faulty.settings, faulty.direct
    assert api.post("/v1/events", json=message(1)).status_code == 200
    redis_process.stop()
    started = time.monotonic()
    down = api.post("/v1/events", json=message(2))
    assert down.status_code == 503 and down.headers["retry-after"]
    assert time.monotonic() - started < 3
    assert api.get("/healthz").status_code == 503
    redis_process.start()  # the same data (append-only file); pooled connections are stale
    assert api.post("/v1/events", json=message(2)).status_code == 200
    assert api.get("/healthz").status_code == 200
    assert streamed(direct) == ["msg-1", "msg-2"] and logged(settings) == ["msg-1", "msg-2"]


def test_a_frozen_redis_is_a_503_within_the_budget_and_retrying_is_safe(
        faulty, redis_process: RedisProcess) -> None:
    api, settings, direct = faulty.api, faulty.settings, faulty.direct
    assert redis_process.process is not None
    pid = redis_process.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        frozen = api.post("/v1/events", json=message(1))
        assert frozen.status_code == 503 and frozen.headers["retry-after"]
        assert time.monotonic() - started < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: api.post("/v1/events", json=message(1)).status_code == 200,
               what="the retry to be accepted")
    assert streamed(direct) == ["msg-1"]
    assert logged(settings) == ["msg-1"]


class _StopsRedisWhileLogging(EventLog):
    """An event log that stops Redis during the append, as if it died mid-request."""

    def __init__(self, root: Path, redis_process: RedisProcess) -> None:
        super().__init__(FolderStore(root))
        self.redis_process = redis_process
        self.armed = True

    def append(self, received_at: dt.datetime, messages: Any) -> int:
        written = super().append(received_at, messages)
        if self.armed:
            self.armed = False
            self.redis_process.stop()
        return written


def test_messages_logged_when_redis_dies_reach_the_stream_exactly_once(
        faulty, redis_process: RedisProcess) -> None:
    api, settings, direct = faulty.api, faulty.settings, faulty.direct
    assert settings.origin_dir is not None
    faulty.app.state.ingest.event_log = _StopsRedisWhileLogging(settings.origin_dir, redis_process)
    answer = api.post("/v1/events", json={"batch": [message(1), message(2)]})
    assert answer.status_code == 503  # logged, not streamed: in the backlog
    redis_process.start()
    wait_until(lambda: len(streamed(direct)) == 2, what="the backlog to be streamed")
    retry = api.post("/v1/events", json={"batch": [message(1), message(2)]})
    assert retry.json() == {"accepted": 0, "duplicates": 2, "suppressed": 0, "rejected": []}
    assert streamed(direct) == ["msg-1", "msg-2"]
    assert logged(settings) == ["msg-1", "msg-2"]
