"""Reading Prometheus text and histogram quantiles as `histogram_quantile` computes them."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from decision_worker.dashboard.scrape import ScrapeError, bucket_delta, parse, quantile
from decision_worker.online.metrics import FRESHNESS_BUCKETS, WorkerMetrics
from edge_functions.metrics import EdgeMetrics


def test_quantile_interpolates_inside_the_bucket_that_reaches_the_rank() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (float("inf"), 40.0)]
    # rank 20 of 40: halfway through the (0.1, 0.2] bucket's 20 observations
    assert quantile(0.5, buckets).seconds == pytest.approx(0.15)
    assert quantile(0.25, buckets).seconds == pytest.approx(0.1)
    assert quantile(0.05, buckets).seconds == pytest.approx(0.02)  # rank 2 of (0, 0.1]
    assert quantile(0.99, buckets).seconds == pytest.approx(0.2 + 0.3 * (39.6 - 30) / 10)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]).seconds is None


def test_a_quantile_beyond_the_last_bound_is_a_flagged_floor() -> None:
    top = quantile(0.99, [(0.1, 5.0), (1.0, 50.0), (float("inf"), 100.0)])
    assert top.seconds == 1.0 and top.above_range


def test_quantiles_of_the_worker_histogram_agree_with_the_observations() -> None:
    metrics = WorkerMetrics()
    rng = np.random.default_rng(3)
    observed = rng.lognormal(np.log(0.04), 0.6, 5000)
    for value in observed:
        metrics.freshness.observe(value)
    samples = parse(generate_latest(metrics.registry).decode())
    buckets = samples.buckets("edgepick_worker_event_to_decision_seconds")
    assert [b for b, _ in buckets[:-1]] == list(FRESHNESS_BUCKETS)
    for q in (0.5, 0.99):
        true = float(np.quantile(observed, q))
        bound = next(i for i, b in enumerate(FRESHNESS_BUCKETS) if true <= b)
        low = FRESHNESS_BUCKETS[bound - 1] if bound else 0.0
        estimate = quantile(q, buckets).seconds
        assert estimate is not None and low <= estimate <= FRESHNESS_BUCKETS[bound]


def test_samples_sum_over_endpoints_and_labels() -> None:
    first, second = EdgeMetrics(), EdgeMetrics()
    first.answers["decision"].inc(3)
    second.answers["decision"].inc(4)
    second.answers["store-timeout"].inc(2)
    samples = parse(generate_latest(first.registry).decode())
    parse(generate_latest(second.registry).decode(), samples)
    counts = samples.by_label("edgepick_edge_answers_total", "source")
    assert counts["decision"] == 7 and counts["store-timeout"] == 2 and counts["holdout"] == 0


def test_bucket_delta_is_none_after_a_restart() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("h_seconds", "h", buckets=(0.1, 1.0), registry=registry)
    histogram.observe(0.05)
    before = parse(generate_latest(registry).decode()).buckets("h_seconds")
    histogram.observe(0.5)
    now = parse(generate_latest(registry).decode()).buckets("h_seconds")
    assert bucket_delta(now, before) == [(0.1, 0.0), (1.0, 1.0), (float("inf"), 1.0)]
    assert bucket_delta(before, now) is None


def test_text_that_is_not_prometheus_is_refused() -> None:
    with pytest.raises(ScrapeError):
        parse("<html>not metrics</html>\n")
