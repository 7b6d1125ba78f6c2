"""`edgepick api`: POST /v1/events (Segment-spec, single or batch), /healthz, /metrics.

Every answer is JSON. A request the API cannot take now (Redis down or frozen, the event
log unwritable, the stream full) is a 503 with `Retry-After` within `EDGEPICK_API_TIMEOUT_S`,
and retrying it is always safe (ingest.py); a malformed one is a 4xx naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.errors import IngestUnavailable, RequestRejected
from decision_worker.ingest.event_log import event_log_from_url
from decision_worker.ingest.events import MAX_REQUEST_BYTES, event_rules
from decision_worker.ingest.ingestion import Ingest
from decision_worker.ingest.request_body import decode_body, loads_strict
from decision_worker.online.forget import MAX_IDS_PER_REQUEST, forget, published_placements
from decision_worker.settings import WorkerSettings
from edge_functions.errors import ConfigError, EdgepickError, InvalidIdentifier
from edge_functions.http_errors import NO_STORE, error_response, http_exception
from edge_functions.redis_client import connect_async

log = logging.getLogger("edgepick.api")
BACKLOG_RETRY_S = 0.5


def create_api(settings: WorkerSettings) -> Starlette:
    if settings.redis_url is None:
        raise ConfigError("the events API needs a Redis URL (the CLI starts embedded Redis)")
    redis = connect_async(settings.redis_url, timeout_s=settings.api_timeout_s, retries=1)
    ingest = Ingest(redis, event_log_from_url(settings.origin), settings.key_secret_bytes,
                    event_rules(settings), settings.api_timeout_s, settings.dedupe_window_s)
    registry = CollectorRegistry()
    messages = Counter("edgepick_ingest_messages_total", "Messages by outcome.", ["outcome"],
                       registry=registry)
    accepted, duplicate, rejected, suppressed = (
        messages.labels(o) for o in ("accepted", "duplicate", "rejected", "suppressed"))
    unavailable = Counter("edgepick_ingest_unavailable_total",
                          "Requests answered 503 (Redis or the event log unavailable).",
                          registry=registry)
    backlog = Gauge("edgepick_ingest_backlog_messages",
                    "Logged messages waiting for Redis to stream them.", registry=registry)
    backlog.set_function(lambda: ingest.backlog_messages)

    async def events(request: Request) -> Response:
        try:
            body = await _read_body(request)
            result = await ingest.accept(decode_body(body, request.headers.get(
                "content-encoding"), MAX_REQUEST_BYTES))
        except RequestRejected as e:
            return error_response(e.status, "invalid_request", f"field '{e.field}' {e.reason}",
                         field=e.field)
        except IngestUnavailable as e:
            unavailable.inc()
            log.warning("refused a request with 503: %s", e.reason)
            return error_response(503, "unavailable", e.reason, retry_after_s=e.retry_after_s)
        accepted.inc(result.accepted)
        duplicate.inc(result.duplicates)
        rejected.inc(len(result.rejections))
        suppressed.inc(result.suppressed)
        payload = {"accepted": result.accepted, "duplicates": result.duplicates,
                   "suppressed": result.suppressed,
                   "rejected": [{"index": r.index, "field": r.field, "reason": r.reason}
                                for r in result.rejections]}
        return JSONResponse(payload, status_code=400 if result.rejections else 200,
                            headers={"cache-control": NO_STORE})

    async def forget_users(request: Request) -> Response:
        refused = _refuse_unauthorized(request, settings.admin_token)
        if refused is not None:
            return refused
        try:
            doc = loads_strict(await _read_body(request))
            ids = doc.get("userIds") if isinstance(doc, dict) else None
            if not isinstance(ids, list) or not 0 < len(ids) <= MAX_IDS_PER_REQUEST:
                raise RequestRejected(400, "userIds", f"must be a list of 1 to "
                                                      f"{MAX_IDS_PER_REQUEST} user ids")
            async with asyncio.timeout(settings.api_timeout_s * 5):
                placements = await published_placements(redis)
                report = await forget(redis, ingest.event_log, settings.key_secret_bytes, ids,
                                      placements, settings.profile_ttl_s)
        except RequestRejected as e:
            return error_response(e.status, "invalid_request", f"field '{e.field}' {e.reason}",
                         field=e.field)
        except InvalidIdentifier as e:
            return error_response(400, "invalid_identifier", e.message, field="userIds")
        except (RedisError, OSError, TimeoutError, EdgepickError) as e:
            return error_response(503, "unavailable", f"forget did not complete, retry it: {e}",
                         retry_after_s=1)
        log.info("forgot %d user(s), %d linked id(s) in all", report.users, report.ids)
        return JSONResponse({"forgotten": report.users, "ids": report.ids,
                             "keys_deleted": report.keys_deleted}, headers={"cache-control": NO_STORE})

    async def healthz(request: Request) -> Response:
        try:
            async with asyncio.timeout(settings.api_timeout_s):
                await redis.ping()
        except (RedisError, OSError, TimeoutError) as e:
            return error_response(503, "unavailable", f"Redis is unavailable: {e or 'no answer'}",
                         retry_after_s=1)
        return JSONResponse({"status": "ok", "backlog": ingest.backlog_messages},
                            headers={"cache-control": NO_STORE})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def drain_forever() -> None:
        while True:
            await asyncio.sleep(BACKLOG_RETRY_S)
            if ingest.backlog:
                try:
                    streamed = await ingest.drain_backlog()
                    log.warning("streamed %d backlogged messages", streamed)
                except IngestUnavailable:
                    continue

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        drainer = asyncio.create_task(drain_forever(), name="ingest-backlog")
        yield
        drainer.cancel()
        with contextlib.suppress(IngestUnavailable, asyncio.CancelledError):
            await ingest.drain_backlog()
        if ingest.backlog:
            log.error("stopping with %d logged messages not streamed: run `edgepick "
                      "recover-stream` once Redis is back", ingest.backlog_messages)
        await redis.aclose()

    app = Starlette(routes=[Route("/v1/events", events, methods=["POST"]),
                            Route("/v1/privacy/forget", forget_users, methods=["POST"]),
                            Route("/healthz", healthz), Route("/metrics", metrics)],
                    lifespan=lifespan,
                    exception_handlers={HTTPException: http_exception})
    app.router.redirect_slashes = False
    app.state.ingest = ingest
    return app


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
        raise RequestRejected(413, "(body)", f"is larger than {MAX_REQUEST_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise RequestRejected(413, "(body)",
                                      f"is larger than {MAX_REQUEST_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:  # the protocol's body timeout, or the client left
        raise RequestRejected(400, "(body)", "did not arrive completely") from e
    return b"".join(chunks)


def _refuse_unauthorized(request: Request, token: str | None) -> Response | None:
    """Operator routes need `Authorization: Bearer $EDGEPICK_ADMIN_TOKEN`."""
    if token is None:
        return error_response(403, "disabled", "this route needs EDGEPICK_ADMIN_TOKEN to be set")
    given = request.headers.get("authorization", "")
    if not given.startswith("Bearer "):
        return error_response(401, "unauthorized", "send Authorization: Bearer <admin token>")
    if not hmac.compare_digest(given[len("Bearer "):].encode(), token.encode()):
        return error_response(401, "unauthorized", "the admin token does not match")
    return None


def create_api_from_env() -> Starlette:
    """uvicorn's factory (benchmarks, several worker processes)."""
    return create_api(WorkerSettings.from_env())
