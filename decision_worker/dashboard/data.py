"""`GET /v1/dashboard`'s document: every panel, built from its real source on each poll.

A panel whose source is not configured or does not answer says so in its `error` and the
others are still shown; only Redis, which most panels read, failing makes the whole
answer a 503 (the route's job). Non-finite floats (a card's NaN metric) become null: JSON
has no NaN.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any

import httpx
from redis.asyncio import Redis

from decision_worker.dashboard.experiments_panel import (
    Analyse,
    HoldoutLift,
    experiments_panel,
    no_analysis,
    no_holdout_lift,
)
from decision_worker.dashboard.models_panel import ModelsPanel, flagged
from decision_worker.dashboard.placements_panel import placements_panel
from decision_worker.dashboard.process_metrics import MetricsPanel, edge_panel, freshness_panel
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.settings import WorkerSettings
from object_store import from_url

SCRAPE_TIMEOUT_S = 1.0


class DashboardData:
    def __init__(self, redis: Redis, settings: WorkerSettings,
                 analyse: Analyse = no_analysis,
                 holdout_lift: HoldoutLift = no_holdout_lift) -> None:
        self.redis = redis
        self.settings = settings
        self.analyse = analyse
        self.holdout_lift = holdout_lift
        self.models = ModelsPanel(ModelRegistry(from_url(settings.origin)))
        self.http = httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_S)
        self.edge = MetricsPanel("EDGEPICK_EDGE_METRICS_URL", settings.edge_metrics_url,
                                 self.http)
        self.worker = MetricsPanel("EDGEPICK_WORKER_METRICS_URL",
                                   settings.worker_metrics_url, self.http)
        self._lock = asyncio.Lock()  # one build at a time: rates need ordered scrapes

    async def build(self) -> dict[str, Any]:
        """Raises RedisError / OSError / TimeoutError when Redis does not answer."""
        async with self._lock:
            models, edge, freshness = await asyncio.gather(
                self.models.read(), edge_panel(self.edge), freshness_panel(self.worker))
            async with asyncio.timeout(self.settings.api_timeout_s):
                placements = await placements_panel(self.redis)
            experiments = await experiments_panel(self.redis, self.analyse,
                                                  self.settings.api_timeout_s)
            personalization = await self.holdout_lift()
        placements["flagged"] = flagged(models)
        doc: dict[str, Any] = finite({"generated_at": dt.datetime.now(dt.UTC).isoformat(),
                       "refresh_s": self.settings.dashboard_refresh_s,
                       "models": models, "edge": edge, "freshness": freshness,
                       "placements": placements, "experiments": experiments,
                       "personalization": personalization})
        return doc

    async def aclose(self) -> None:
        await self.http.aclose()


def finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
