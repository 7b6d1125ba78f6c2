"""`edgepick api`: the events API process, put together from the rooms' routes:
`POST /v1/events` (ingest), `POST /v1/privacy/forget` and `GET /v1/decisions/{user}`
(online, operator routes), the operator dashboard (`GET /dashboard`, its data at
`GET /v1/dashboard`: dashboard/), `/healthz`, `/metrics`.

Every answer is JSON. A request the process cannot take now (Redis down or frozen, the event
log unwritable, the stream full) is a 503 with `Retry-After` within `EDGEPICK_API_TIMEOUT_S`;
a malformed one is a 4xx naming the problem. Logged messages that Redis could not take wait
in a backlog, streamed as soon as it answers (ingest/ingestion.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from decision_worker.dashboard.data import DashboardData
from decision_worker.dashboard.experiments_panel import Analyse, HoldoutLift, no_holdout_lift
from decision_worker.dashboard.rollout_analysis import rollout_hooks
from decision_worker.dashboard.routes import dashboard_routes
from decision_worker.errors import IngestUnavailable
from decision_worker.ingest.event_log import event_log_from_url
from decision_worker.ingest.events import event_rules
from decision_worker.ingest.events_api import events_route
from decision_worker.ingest.ingestion import Ingest
from decision_worker.online.decisions_api import decisions_route
from decision_worker.online.privacy_api import forget_route
from decision_worker.settings import WorkerSettings
from edge_functions.errors import ConfigError
from edge_functions.http_errors import NO_STORE, error_response, http_exception
from edge_functions.redis_client import connect_async

log = logging.getLogger("edgepick.api")
BACKLOG_RETRY_S = 0.5


def create_api(settings: WorkerSettings, analyse: Analyse | None = None) -> Starlette:
    """`analyse`: the rollout analysis the dashboard shows per experiment
    (dashboard/experiments_panel.py) [default: the rollouts' own, rollout_analysis.py, which
    also gives the dashboard the lift of personalization against the holdout]."""
    if settings.redis_url is None:
        raise ConfigError("the events API needs a Redis URL (the CLI starts embedded Redis)")
    lift: HoldoutLift = no_holdout_lift
    if analyse is None:
        analyse, lift = rollout_hooks(settings.redis_url)
    redis = connect_async(settings.redis_url, timeout_s=settings.api_timeout_s, retries=1)
    ingest = Ingest(redis, event_log_from_url(settings.origin), settings.key_secret_bytes,
                    event_rules(settings), settings.api_timeout_s, settings.dedupe_window_s)
    registry = CollectorRegistry()
    backlog = Gauge("edgepick_ingest_backlog_messages",
                    "Logged messages waiting for Redis to stream them.", registry=registry)
    backlog.set_function(lambda: ingest.backlog_messages)
    dashboard = DashboardData(redis, settings, analyse, lift)

    async def healthz(request: Request) -> Response:
        try:
            async with asyncio.timeout(settings.api_timeout_s):
                await redis.ping()
        except (RedisError, OSError, TimeoutError) as e:
            return error_response(503, "unavailable",
                                  f"Redis is unavailable: {e or 'no answer'}", retry_after_s=1)
        return JSONResponse({"status": "ok", "backlog": ingest.backlog_messages},
                            headers={"cache-control": NO_STORE})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        drainer = asyncio.create_task(_drain_forever(ingest), name="ingest-backlog")
        yield
        drainer.cancel()
        with contextlib.suppress(IngestUnavailable, asyncio.CancelledError):
            await ingest.drain_backlog()
        if ingest.backlog:
            log.error("stopping with %d logged messages not streamed: run `edgepick "
                      "recover-stream` once Redis is back", ingest.backlog_messages)
        await dashboard.aclose()
        await redis.aclose()

    app = Starlette(routes=[events_route(ingest, registry),
                            forget_route(redis, ingest.event_log, settings),
                            decisions_route(redis, settings),
                            *dashboard_routes(dashboard, settings.admin_token),
                            Route("/healthz", healthz), Route("/metrics", metrics)],
                    lifespan=lifespan, exception_handlers={HTTPException: http_exception})
    app.router.redirect_slashes = False
    app.state.ingest = ingest
    return app


async def _drain_forever(ingest: Ingest) -> None:
    while True:
        await asyncio.sleep(BACKLOG_RETRY_S)
        if ingest.backlog:
            try:
                streamed = await ingest.drain_backlog()
                log.warning("streamed %d backlogged messages", streamed)
            except IngestUnavailable:
                continue


def create_api_from_env() -> Starlette:
    """uvicorn's factory (benchmarks, several worker processes)."""
    return create_api(WorkerSettings.from_env())
