"""The event log on an S3 origin (moto's S3 server in place of AWS)."""

from __future__ import annotations

import dataclasses
import json

import boto3
import httpx
from redis import Redis

from decision_worker.api import create_api
from decision_worker.keys import EVENTS_STREAM
from tests.conftest import BUCKET


def message(i: int) -> dict[str, object]:
    return {"type": "track", "event": "Session Started", "userId": f"user-{i}",
            "messageId": f"msg-{i}", "timestamp": "2026-11-23T10:00:00Z"}


def test_accepted_events_are_objects_on_the_s3_origin(s3_endpoint, settings, redis: Redis,
                                                      serve_app) -> None:
    settings = dataclasses.replace(settings, origin=f"s3://{BUCKET}/site-a")
    api = serve_app(create_api(settings))
    assert httpx.post(f"{api}/v1/events", json={"batch": [message(1), message(2)]}).json()[
        "accepted"] == 2
    assert httpx.post(f"{api}/v1/events", json=message(1)).json()["duplicates"] == 1
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=BUCKET, Prefix="site-a/events/event_day=2026-11-23/")["Contents"]]
    # The duplicate was refused before anything was written: one object, each message once.
    assert len(keys) == 1 and keys[0].endswith(".jsonl")
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert [json.loads(line)["messageId"] for line in body.splitlines()] == ["msg-1", "msg-2"]
    assert redis.xlen(EVENTS_STREAM) == 2


def test_unwritable_event_log_is_a_503_and_nothing_is_streamed(s3_endpoint, settings,
                                                               redis: Redis, serve_app) -> None:
    settings = dataclasses.replace(settings, origin="s3://no-such-bucket/x")
    api = serve_app(create_api(settings))
    answer = httpx.post(f"{api}/v1/events", json=message(3))
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable" and "event log" in answer.json()["detail"]
    assert answer.headers["retry-after"]
    assert "no-such-bucket" in answer.json()["detail"]
    assert redis.xlen(EVENTS_STREAM) == 0
    # the sender's retry, once the log works, is accepted (the message was not marked seen)
    ok = dataclasses.replace(settings, origin=f"s3://{BUCKET}/x")
    assert httpx.post(f"{serve_app(create_api(ok))}/v1/events", json=message(3)).json()[
        "accepted"] == 1


def test_model_registry_on_s3_and_an_unreachable_one(s3_endpoint, monkeypatch) -> None:
    import pytest

    from decision_worker.errors import RegistryError
    from decision_worker.learning.registry import registry_from_url
    from tests.conftest import free_port

    registry = registry_from_url(f"s3://{BUCKET}/prod")
    assert registry.pointers()["production"] is None
    registry.register("lgbm-s3", "tree\n", {"features": []})
    assert registry.pointers()["shadow"] == "lgbm-s3"
    assert registry.load("lgbm-s3")[0] == "tree\n"
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RegistryError, match="s3://"):
        registry_from_url(f"s3://{BUCKET}/prod").pointers()
