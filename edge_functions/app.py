"""The Starlette serving app: routes, start-up and shutdown. Logic lives in serving.py."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from edge_functions.circuit_breaker import CircuitBreaker
from edge_functions.decision_store import BatchedDecisionReader
from edge_functions.env import DEV_SECRET
from edge_functions.exposures import ExposureQueue
from edge_functions.http_errors import NO_STORE, error_response, http_exception
from edge_functions.local_origin import ImmutableContent
from edge_functions.logs import configure as configure_logs
from edge_functions.manifest import ManifestCache
from edge_functions.metrics import EdgeMetrics
from edge_functions.redis_client import connect_async
from edge_functions.serving import PLACEMENT_PREFIX, PlacementServer
from edge_functions.settings import ServingSettings

log = logging.getLogger("edgepick.edge")


def create_app(settings: ServingSettings) -> ServingApp:
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (the CLI starts embedded Redis)")
    if settings.key_secret == DEV_SECRET:
        log.warning("EDGEPICK_KEY_SECRET is the development default: set a secret of your own "
                    "(the same for publisher, worker and edge) before real users arrive")
    budget_s = settings.store_budget_ms / 1000
    redis = connect_async(settings.redis_url, budget_s)
    metrics = EdgeMetrics()
    manifest = ManifestCache(redis, settings.manifest_refresh_s,
                             snapshot_path=settings.data_dir / "manifest-snapshot.json",
                             on_change=lambda m: metrics.manifest_rev.set(m.rev))
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
    exposures = ExposureQueue(settings.exposure_buffer, idle_flush_s=settings.exposure_flush_s)
    reader = BatchedDecisionReader(redis, budget_s, breaker, exposures)
    edge = PlacementServer(settings.key_secret_bytes, manifest, reader, metrics)
    metrics.count_store_batches(lambda: (reader.round_trips, reader.batched_requests))
    metrics.count_exposures(lambda: (exposures.queued, exposures.sent, exposures.dropped))

    async def healthz(request: Request) -> Response:
        """503 until a manifest is served; then 200, with `degraded` while serving from a
        fallback (the last good manifest of a store that lost it, or an open circuit)."""
        circuit = breaker.state
        body = {"manifest_loaded": manifest.loaded, "manifest_rev": manifest.current.rev,
                "manifest_missing": manifest.missing, "store_circuit": circuit,
                "degraded": manifest.missing or circuit != "closed"}
        return JSONResponse(body, status_code=200 if manifest.loaded else 503,
                            headers={"cache-control": NO_STORE})

    async def prometheus(request: Request) -> Response:
        metrics.breaker_open.set(1 if breaker.state == "open" else 0)
        metrics.manifest_missing.set(1 if manifest.missing else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await manifest.start()
        # Everything allocated so far lives for the process: move it out of the collector's
        # sight so full collections stay short (they are what shows up in the p99).
        gc.collect()
        gc.freeze()
        yield
        await manifest.stop()
        await reader.close()
        await redis.aclose()

    routes: list[BaseRoute] = [
        Route("/p", edge.placements),
        Route("/healthz", healthz),
        Route("/metrics", prometheus),
    ]
    if settings.serve_origin and settings.origin_dir is not None:
        routes.append(Mount("/content", ImmutableContent(settings.origin_dir)))
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_exception, Exception: server_error})
    # Starlette's slash redirects build Location from the Host header: an open redirect.
    app.router.redirect_slashes = False
    app.state.edge = edge
    return ServingApp(app, edge)


async def server_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises `exc` after this answer, so uvicorn still logs the traceback.
    return error_response(500, "internal_error", "unexpected error; it has been logged")


class ServingApp:
    """Send `/p/{placement}` straight to the plain-ASGI hot path; everything else to Starlette
    (lifespan included, so start-up and shutdown stay in one place)."""

    def __init__(self, starlette: Starlette, edge: PlacementServer) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self._placement = edge.placement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PLACEMENT_PREFIX):
            await self._placement(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def create_app_from_env() -> ServingApp:
    """uvicorn's factory for `edgepick serve` (each worker process reads the environment)."""
    configure_logs(os.environ.get("EDGEPICK_LOG_LEVEL", "WARNING").upper())
    return create_app(ServingSettings.from_env())
