"""Panels read from the other processes' Prometheus metrics: the edge's answers by source
(`EDGEPICK_EDGE_METRICS_URL`) and the worker's decision freshness
(`EDGEPICK_WORKER_METRICS_URL`, the worker started with `--metrics-port`).

Counters and histograms count since each process started; to show what happens *now*, the
previous scrape is kept and the panels add the rate of each source and the freshness
quantiles of the observations in between (`since_last`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from decision_worker.dashboard.scrape import (
    Samples,
    ScrapeError,
    bucket_delta,
    quantile,
    scrape,
)
from edge_functions.metrics import SOURCES

ANSWERS = "edgepick_edge_answers_total"
EDGE_LATENCY = "edgepick_edge_request_seconds"
FRESHNESS = "edgepick_worker_event_to_decision_seconds"
LAG = "edgepick_worker_lag_seconds"
PENDING = "edgepick_worker_pending_entries"
DECISIONS = "edgepick_worker_decisions_total"


@dataclass
class _Scraped:
    at: float
    samples: Samples


class MetricsPanel:
    """One scraped process kind; remembers its previous scrape for rates."""

    def __init__(self, env_name: str, urls: str | None, client: httpx.AsyncClient) -> None:
        self.env_name = env_name
        self.urls = [u.strip() for u in (urls or "").split(",") if u.strip()]
        self.client = client
        self.previous: _Scraped | None = None

    async def read(self) -> tuple[dict[str, Any], Samples | None, _Scraped | None]:
        """(the panel's common fields, this scrape, the previous one)."""
        if not self.urls:
            return ({"configured": False, "error": f"{self.env_name} is not set: this "
                     "process does not know where to read them"}, None, None)
        try:
            samples = await scrape(self.client, self.urls)
        except ScrapeError as e:
            return {"configured": True, "error": f"unreachable: {e}"}, None, None
        previous, self.previous = self.previous, _Scraped(time.monotonic(), samples)
        return {"configured": True, "error": None, "endpoints": len(self.urls)}, samples, \
            previous


async def edge_panel(panel: MetricsPanel) -> dict[str, Any]:
    common, samples, previous = await panel.read()
    if samples is None:
        return {**common, "answers": [], "total": None, "latency": None}
    counts = samples.by_label(ANSWERS, "source")
    before = previous.samples.by_label(ANSWERS, "source") if previous else {}
    seconds = time.monotonic() - previous.at if previous else 0.0
    order = [s for s in SOURCES if s in counts] + sorted(set(counts) - set(SOURCES))
    answers = []
    for source in order:
        rate = None
        if previous is not None and seconds > 0 and counts[source] >= before.get(source, 0):
            rate = (counts[source] - before.get(source, 0.0)) / seconds
        answers.append({"source": source, "count": counts[source], "rate_per_s": rate})
    buckets = samples.buckets(EDGE_LATENCY)
    return {**common, "answers": answers, "total": sum(counts.values()),
            "latency": _quantiles(buckets), "interval_s": seconds or None}


async def freshness_panel(panel: MetricsPanel) -> dict[str, Any]:
    common, samples, previous = await panel.read()
    if samples is None:
        return {**common, "since_start": None, "since_last": None, "lag_s": None,
                "pending": None, "decisions": None}
    buckets = samples.buckets(FRESHNESS)
    since_last = None
    if previous is not None:
        delta = bucket_delta(buckets, previous.samples.buckets(FRESHNESS))
        if delta is not None:
            since_last = _quantiles(delta)
    return {**common, "since_start": _quantiles(buckets), "since_last": since_last,
            "lag_s": samples.value(LAG), "pending": samples.value(PENDING),
            "decisions": samples.value(DECISIONS)}


def _quantiles(buckets: list[tuple[float, float]]) -> dict[str, Any]:
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    return {"count": buckets[-1][1] if buckets else 0.0,
            "p50_s": p50.seconds, "p99_s": p99.seconds,
            "above_range": p50.above_range or p99.above_range}
