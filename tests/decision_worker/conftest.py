"""Worker fixtures: a catalog in the manifest, events pushed through the real ingest path
(validation, event log, idempotency script, stream), and the worker run to a drained stream."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from content_variants.manifest_writer import apply
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.ingestion import Ingest, IngestResult
from decision_worker.online.worker import Worker
from decision_worker.ranking.ranker import Ranker
from edge_functions.decision_record import DecisionRecord, decode
from edge_functions.keys import decision_key, user_tag
from object_store.folder import FolderStore
from tests.conftest import Settings

# placement → (default, {variant: metadata})
CATALOG: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "hero": ("evergreen", {
        "evergreen": {"category": "general"},
        "trail-running": {"category": "running"},
        "winter-camping": {"category": "camping"},
        "climbing-es": {"category": "climbing", "locale": "es-ES"},
        "spring-sale": {"category": "sale", "ends_at": "2020-04-01T00:00:00+00:00"},
    }),
    "cta": ("join", {
        "join": {"category": "general"},
        "free-shipping": {"category": "running"},
        "app-download": {"category": "camping"},
    }),
}
NOW = dt.datetime.now(dt.UTC)


def write_catalog(redis: Redis, catalog: dict[str, tuple[str, dict[str, dict[str, Any]]]]
                  = CATALOG) -> None:
    def change(doc: dict[str, Any]) -> None:
        for placement, (default, variants) in catalog.items():
            doc["placements"][placement] = {"default": default, "variants": {
                v: {"url": f"https://cdn.test/content/{placement}/variant-{v}.0123abcd.json",
                    "digest": "0123abcd", "title": v, "tags": [], "locale": None,
                    "starts_at": None, "ends_at": None, **meta}
                for v, meta in variants.items()}}

    apply(redis, change)


def track(user: str | None, name: str, message_id: str, at: dt.datetime = NOW,
          anonymous: str | None = None, **properties: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": name, "messageId": message_id,
                               "timestamp": at.isoformat().replace("+00:00", "Z"),
                               "properties": properties}
    if user is not None:
        message["userId"] = user
    if anonymous is not None:
        message["anonymousId"] = anonymous
    return message


@pytest.fixture
def worker_settings(settings: Settings, redis: Redis) -> Settings:
    write_catalog(redis)
    return dataclasses.replace(settings, claim_idle_s=0.2, redecide_interval_s=3600,
                               worker_batch=100)


@pytest.fixture
def ingest(worker_settings: Settings) -> Callable[[list[dict[str, Any]]], IngestResult]:
    """Push messages through the API's ingest path (validated, logged, streamed)."""

    def push(messages: list[dict[str, Any]]) -> IngestResult:
        async def go() -> IngestResult:
            assert worker_settings.redis_url and worker_settings.origin_dir
            client = AsyncRedis.from_url(worker_settings.redis_url)
            try:
                return await Ingest(client, EventLog(FolderStore(worker_settings.origin_dir)),
                                    worker_settings.key_secret_bytes).accept(
                    json.dumps({"batch": messages}).encode())
            finally:
                await client.aclose()

        return asyncio.run(go())

    return push


@pytest.fixture
def drain(worker_settings: Settings) -> Callable[..., Worker]:
    """Run a worker until the stream is drained; returns it (its totals say what it did)."""

    def run(settings: Settings | None = None, ranker: Ranker | None = None,
            consumer: str = "test-worker") -> Worker:
        settings = settings or worker_settings

        async def go() -> Worker:
            assert settings.redis_url
            client = AsyncRedis.from_url(settings.redis_url)
            try:
                worker = Worker(client, settings, ranker=ranker, consumer=consumer)
                await worker.run(burst=True)
                return worker
            finally:
                await client.aclose()

        return asyncio.run(go())

    return run


@pytest.fixture
def decision(redis: Redis,
             worker_settings: Settings) -> Callable[[str, str], DecisionRecord | None]:
    def read(user: str, placement: str) -> DecisionRecord | None:
        raw = redis.get(decision_key(user_tag(worker_settings.key_secret_bytes, user), placement))
        return None if raw is None else decode(raw)

    return read
