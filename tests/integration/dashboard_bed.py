"""Real data for the dashboard, made by the real code paths: the example catalog published
and served by the edge, models registered (and one promoted) in the folder origin's
registry, experiments written to Redis as the controller writes them, events posted to the
events API and decided by a worker whose metrics are served as `edgepick worker
--metrics-port` serves them, and placement requests answered by the edge. Used by the
dashboard's API tests, its browser tests and docs/screenshot_dashboard.py."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client import make_asgi_app
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.api import create_api
from decision_worker.dashboard.experiments_panel import Analyse, no_analysis
from decision_worker.keys import EXPERIMENTS
from decision_worker.learning.evaluation import METRICS
from decision_worker.learning.registry import Registry
from decision_worker.online.metrics import WorkerMetrics
from decision_worker.online.worker import Worker
from decision_worker.ranking.experiment import Experiment
from edge_functions.bucketing import in_holdout
from object_store.folder import FolderStore

TOKEN = "admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
PLACEMENT_VARIANTS = {"hero": ["winter-camping", "trail-running", "evergreen", "climbing-es"],
                      "cta": ["free-shipping", "join", "app-download"],
                      "email-header": ["new-arrivals", "weekly", "back-in-stock"]}


FLAG = {"placement": "hero", "variant": "climbing-es", "views": 1260, "clicks": 4,
        "expected_clicks": 31.6, "p_value": 2.1e-07}


def card(ndcg1: float, against: str | None, production_ndcg1: float, low: float,
         high: float, users: int = 1800, flags: tuple[dict[str, Any], ...] = ()
         ) -> dict[str, Any]:
    """A card in the shape learning/pipeline.py writes (metrics of every model evaluated,
    the primary metric and its interval)."""
    def metrics(ndcg: float, auc: float, coverage: float, diversity: float) -> dict[str, float]:
        values = {m: round(ndcg * f, 4) for m, f in zip(METRICS[:6], (1, 1.1, 1.15, .9, 1.3,
                                                                      1.2), strict=True)}
        return {**values, "auc": auc, "coverage": coverage, "diversity": diversity}

    return {"metrics": {"candidate": metrics(ndcg1, 0.712, 0.83, 2.41),
                        "production": metrics(production_ndcg1, 0.698, 0.79, 2.36),
                        "trending": metrics(production_ndcg1 * 0.8, 0.61, 0.35, 1.7),
                        "popularity": metrics(production_ndcg1 * 0.7, 0.6, 0.2, 1.2)},
            "primary": "ndcg@1", "production_version": against,
            "comparison": {"value": round(ndcg1 - production_ndcg1, 4), "low": low,
                           "high": high, "groups": users * 3, "users": users},
            "content_flags": list(flags), "trained_at": dt.datetime.now(dt.UTC).isoformat(),
            "window": {"since": "2026-11-28T00:00:00+00:00",
                       "until": "2026-12-05T00:00:00+00:00"}}


def register_models(registry: Registry) -> tuple[str, str]:
    """m1 registered and promoted (forced: it was the first), m2 registered as the shadow."""
    registry.register("m20261201-a", "tree\n", card(0.412, None, 0.371, 0.018, 0.064,
                                                    flags=(FLAG,)))
    registry.promote("m20261201-a", force_reason="first model, beat the baseline offline")
    registry.register("m20261204-b", "tree\n", card(0.431, "m20261201-a", 0.412, 0.004, 0.034))
    return "m20261201-a", "m20261204-b"


def experiment(**changes: Any) -> Experiment:
    now = dt.datetime.now(dt.UTC).timestamp()
    base = Experiment(id="rollout-m20261204-b", name="m20261204-b rollout",
                      treatment_model="m20261204-b", control_model="m20261201-a",
                      status="ramping", step_index=1, started_at=now - 5400,
                      step_started_at=now - 1200)
    return base.with_(**changes)


def write_experiment(redis: Redis, exp: Experiment) -> None:
    redis.hset(EXPERIMENTS, exp.id, exp.dumps())


def users(prefix: str, count: int) -> list[str]:
    return [u for u in (f"{prefix}-{i}" for i in range(count * 2))
            if not in_holdout(u, 0.1)][:count]


def engagement(user: str, placement: str, variant: str, views: int, clicks: int,
               tag: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat()
    props = {"placement": placement, "variant": variant, "position": 1}
    return [{"type": "track", "event": name, "userId": user, "messageId": f"{tag}-{name}-{i}",
             "timestamp": now, "properties": props}
            for name, n in (("Variant Viewed", views), ("Variant Clicked", clicks))
            for i in range(n)] + [
        {"type": "track", "event": "Session Started", "userId": user, "timestamp": now,
         "messageId": f"{tag}-session", "context": {"userAgent": "Mozilla/5.0 (iPhone) Mobile"}}]


@dataclasses.dataclass
class DashboardBed:
    settings: Any
    redis: Redis
    edge: str
    api: str
    worker_metrics: WorkerMetrics
    registry: Registry

    def post(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 500):
            answer = httpx.post(f"{self.api}/v1/events", json={"batch": messages[start:][:500]})
            assert answer.status_code == 200, answer.text

    def drain(self) -> None:
        async def go() -> None:
            client = AsyncRedis.from_url(self.settings.redis_url)
            try:
                await Worker(client, self.settings, metrics=self.worker_metrics).run(burst=True)
            finally:
                await client.aclose()

        # In a thread of its own: Playwright's sync API keeps an event loop on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result()

    def traffic(self, prefix: str, count: int, seed: int = 0) -> None:
        """`count` users engage with the catalog (a preference per placement), are decided,
        then load every placement from the edge, with a few anonymous visitors."""
        rng = random.Random(seed)
        messages = []
        people = users(prefix, count)
        for n, user in enumerate(people):
            for placement, variants in PLACEMENT_VARIANTS.items():
                variant = variants[min(int(rng.expovariate(1.2)), len(variants) - 1)]
                clicks = rng.random() < 0.35
                messages += engagement(user, placement, variant, rng.randint(1, 4),
                                       int(clicks), f"{prefix}-{n}-{placement}")
        self.post(messages)
        self.drain()
        with httpx.Client(base_url=self.edge) as edge:
            for user in [*people, *(f"{prefix}-new-{i}" for i in range(count // 4))]:
                edge.get("/p", params={"placements": ",".join(PLACEMENT_VARIANTS), "uid": user})
            for _ in range(count // 8):
                edge.get("/p/hero")


def start_bed(settings: Any, edge: str, serve_app: Callable[..., str], redis: Redis,
              analyse: Analyse | None = no_analysis, refresh_s: float = 0.5) -> DashboardBed:
    """The API (dashboard included) and the worker's metrics endpoint, beside a running
    edge at `edge` whose catalog is published. `analyse` None: the rollouts' own analysis
    (decision_worker/dashboard/rollout_analysis.py, from the arm counters)."""
    worker_metrics = WorkerMetrics()
    worker_base = serve_app(make_asgi_app(worker_metrics.registry))
    settings = dataclasses.replace(settings, admin_token=TOKEN,
                                   edge_metrics_url=f"{edge}/metrics",
                                   worker_metrics_url=f"{worker_base}/",
                                   dashboard_refresh_s=refresh_s)
    api = serve_app(create_api(settings, analyse))
    assert settings.origin_dir is not None
    return DashboardBed(settings, redis, edge, api, worker_metrics,
                        Registry(FolderStore(settings.origin_dir)))
