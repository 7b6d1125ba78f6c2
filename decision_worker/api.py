"""`edgepick api`: POST /v1/events (Segment-spec, single or batch), /healthz, /metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.event_log import event_log_from_url
from decision_worker.events import MAX_REQUEST_BYTES, RequestRejected
from decision_worker.ingest import Ingest
from edge_functions.errors import ConfigError, EdgepickError
from edge_functions.redis_client import connect_async
from edge_functions.settings import Settings

log = logging.getLogger("edgepick.api")


def create_api(settings: Settings) -> Starlette:
    if settings.redis_url is None:
        raise ConfigError("the events API needs a Redis URL (the CLI starts embedded Redis)")
    redis = connect_async(settings.redis_url)
    ingest = Ingest(redis, event_log_from_url(settings.origin))
    registry = CollectorRegistry()
    messages = Counter("edgepick_ingest_messages_total", "Messages by outcome.", ["outcome"],
                       registry=registry)
    accepted, duplicate, rejected = (messages.labels(o) for o in
                                     ("accepted", "duplicate", "rejected"))

    async def events(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
            return _error(413, "(body)", f"is larger than {MAX_REQUEST_BYTES} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return _error(413, "(body)", f"is larger than {MAX_REQUEST_BYTES} bytes")
        try:
            result = await ingest.accept(body)
        except RequestRejected as e:
            return _error(e.status, e.field, e.reason)
        except (EdgepickError, OSError) as e:
            # The log could not be written: nothing was streamed; the sender should retry.
            log.error("event log unavailable: %s", e)
            return JSONResponse({"error": "event_log_unavailable", "detail": str(e)},
                                status_code=503)
        accepted.inc(result.accepted)
        duplicate.inc(result.duplicates)
        rejected.inc(len(result.rejections))
        payload = {"accepted": result.accepted, "duplicates": result.duplicates,
                   "rejected": [{"index": r.index, "field": r.field, "reason": r.reason}
                                for r in result.rejections]}
        return JSONResponse(payload, status_code=400 if result.rejections else 200)

    async def healthz(request: Request) -> Response:
        await redis.ping()
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    return Starlette(routes=[Route("/v1/events", events, methods=["POST"]),
                             Route("/healthz", healthz), Route("/metrics", metrics)],
                     lifespan=lifespan)


def _error(status: int, field: str, reason: str) -> Response:
    return JSONResponse({"error": "invalid_request", "field": field,
                         "detail": f"field '{field}' {reason}"}, status_code=status)


def create_api_from_env() -> Starlette:
    """uvicorn's factory (benchmarks, several worker processes)."""
    return create_api(Settings.from_env())
