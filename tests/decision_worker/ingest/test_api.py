"""POST /v1/events on a real Redis: good messages are streamed and logged, bad ones are
dead-lettered with their reason, redelivery is processed once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from decision_worker.api import create_api
from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import DEAD_LETTER_STREAM, EVENTS_STREAM
from object_store.folder import FolderStore


@pytest.fixture
def api(settings, redis: Redis, serve_app) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serve_app(create_api(settings))) as client:
        yield client


EVENT_DAY = dt.date(2026, 11, 23)  # the log is partitioned by event day: the messages' own


def message(i: int, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Session Started", "userId": f"user-{i}",
            "messageId": f"msg-{i}", "timestamp": "2026-11-23T10:00:00Z", **extra}


def test_bad_messages_are_dead_lettered_and_good_ones_kept(api, redis: Redis, settings) -> None:
    batch = [message(0), {"type": "track", "userId": "u", "messageId": "x"}, message(2),
             message(3, timestamp="23/11/2026")]
    response = api.post("/v1/events", json={"batch": batch})
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "event"),
                                                                   (3, "timestamp")]
    streamed = [json.loads(fields[b"m"]) for _, fields in redis.xrange(EVENTS_STREAM)]
    assert [m["messageId"] for m in streamed] == ["msg-0", "msg-2"]
    dead = redis.xrange(DEAD_LETTER_STREAM)
    assert [(f[b"field"], f[b"reason"]) for _, f in dead] == [
        (b"event", b"is required for a track message"),
        (b"timestamp", b"must be an ISO-8601 date-time such as 2026-11-23T10:00:00Z")]
    assert json.loads(dead[1][1][b"raw"])["messageId"] == "msg-3"
    logged = EventLog(FolderStore(settings.origin_dir)).read_day(EVENT_DAY)
    assert [m["messageId"] for m in logged] == ["msg-0", "msg-2"]
    assert all("receivedAt" in m for m in logged)


def test_redelivered_message_id_is_processed_once(api, redis: Redis, settings) -> None:
    first = api.post("/v1/events", json=message(7))
    assert first.status_code == 200 and first.json()["accepted"] == 1
    again = api.post("/v1/events", json={"batch": [message(7), message(8), message(8)]})
    assert again.json() == {"accepted": 1, "duplicates": 2, "suppressed": 0, "rejected": []}
    assert redis.xlen(EVENTS_STREAM) == 2
    logged = EventLog(FolderStore(settings.origin_dir)).read_day(EVENT_DAY)
    assert sorted(m["messageId"] for m in logged) == ["msg-7", "msg-8"]


def test_unusable_requests_are_refused_whole(api, redis: Redis) -> None:
    assert api.post("/v1/events", content=b"{nope").status_code == 400
    huge = api.post("/v1/events", content=b"[" + b" " * (600 * 1024) + b"]")
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert api.get("/v1/events").status_code == 405
    assert not redis.exists(EVENTS_STREAM)


def test_metrics_count_outcomes(api) -> None:
    api.post("/v1/events", json={"batch": [message(1), message(1), {"type": "nope"}]})
    text = api.get("/metrics").text
    assert 'edgepick_ingest_messages_total{outcome="accepted"} 1.0' in text
    assert 'edgepick_ingest_messages_total{outcome="duplicate"} 1.0' in text
    assert 'edgepick_ingest_messages_total{outcome="rejected"} 1.0' in text
