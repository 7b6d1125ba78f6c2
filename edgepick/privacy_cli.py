"""The operator commands that act on the worker's Redis with its async client:
`edgepick forget` and `edgepick recover-stream`."""

from __future__ import annotations

import asyncio
import datetime as dt

from decision_worker.errors import IngestUnavailable
from decision_worker.ingest.event_log import event_log_from_url
from decision_worker.ingest.events import event_rules
from decision_worker.ingest.ingestion import Ingest
from decision_worker.ingest.recovery import restream
from decision_worker.online.forget import ForgetReport, forget, published_placements
from decision_worker.settings import WorkerSettings
from edge_functions.errors import EdgepickError
from edge_functions.redis_client import connect_async


class RecoveryFailed(EdgepickError):
    error_code = "recovery_failed"


def forget_users(settings: WorkerSettings, users: list[str]) -> ForgetReport:
    async def run() -> ForgetReport:
        assert settings.redis_url is not None
        redis = connect_async(settings.redis_url, timeout_s=10, retries=1)
        try:
            return await forget(redis, event_log_from_url(settings.origin),
                                settings.key_secret_bytes, users,
                                await published_placements(redis), settings.profile_ttl_s)
        finally:
            await redis.aclose()

    return asyncio.run(run())


def recover(settings: WorkerSettings, since: dt.datetime) -> int:
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)

    async def run() -> int:
        assert settings.redis_url is not None
        redis = connect_async(settings.redis_url, timeout_s=10, retries=1)
        log = event_log_from_url(settings.origin)
        try:
            ingest = Ingest(redis, log, settings.key_secret_bytes, event_rules(settings), 30.0)
            return await restream(ingest, log, since)
        except IngestUnavailable as e:
            raise RecoveryFailed(e.reason) from e
        finally:
            await redis.aclose()

    return asyncio.run(run())

