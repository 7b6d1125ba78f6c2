"""Prometheus metrics of the serving layer, in a registry per app (tests build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

# Sub-millisecond resolution where the bar is (p99 < 5 ms), coarse above the budget.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02,
                   0.03, 0.05, 0.1, 0.25, 1.0)
SOURCES = ("decision", "no-user", "opted-out", "no-decision", "holdout", "not-eligible",
           "corrupt-record", "store-timeout", "store-error", "circuit-open")


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        latency = Histogram("edgepick_edge_request_seconds",
                            "Time in the handler for placement lookups, store wait included.",
                            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.latency_single = latency.labels("placement")
        self.latency_batch = latency.labels("batch")
        answers = Counter("edgepick_edge_answers_total",
                          "Placement answers by where the variant came from; every source "
                          "but 'decision' is a fallback to the placement default.",
                          ["source"], registry=self.registry)
        self.answers = {source: answers.labels(source) for source in SOURCES}
        self.rejected = Counter("edgepick_edge_rejected_total",
                                "Requests refused with a 4xx, by reason.",
                                ["reason"], registry=self.registry)
        self.breaker_open = Gauge("edgepick_edge_store_circuit_open",
                                  "1 while the decision-store circuit breaker is open.",
                                  registry=self.registry)
        self.manifest_missing = Gauge("edgepick_edge_manifest_missing",
                                      "1 while the store has no manifest: this process serves "
                                      "its last good one (or, never having had one, none).",
                                      registry=self.registry)
        self.manifest_rev = Gauge("edgepick_edge_manifest_revision",
                                  "Revision of the manifest this process serves.",
                                  registry=self.registry)

    def count_store_batches(self, read: Callable[[], tuple[int, int]]) -> None:
        """Expose the batching reader's (round trips, lookups) at scrape time, not per call."""
        self.registry.register(_StoreBatches(read))

    def count_exposures(self, read: Callable[[], tuple[int, int, dict[str, int]]]) -> None:
        """Expose the exposure queue's (queued, sent, dropped by reason) at scrape time: the
        hot path only adds to plain integers."""
        self.registry.register(_Exposures(read))


class _StoreBatches(Collector):
    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        round_trips, lookups = self._read()
        yield CounterMetricFamily("edgepick_edge_store_round_trips",
                                  "Decision-store round trips (one MGET each).", round_trips)
        yield CounterMetricFamily("edgepick_edge_store_lookups",
                                  "Requests answered by those round trips; lookups / round "
                                  "trips is the mean batch size.", lookups)


class _Exposures(Collector):
    def __init__(self, read: Callable[[], tuple[int, int, dict[str, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        queued, sent, dropped = self._read()
        yield CounterMetricFamily("edgepick_edge_exposures_queued",
                                  "Exposures of experiment arms served and queued for the "
                                  "worker.", queued)
        yield CounterMetricFamily("edgepick_edge_exposures_sent",
                                  "Exposures Redis accepted (in XADDs riding with lookups, "
                                  "or sent alone when idle).", sent)
        family = CounterMetricFamily("edgepick_edge_exposures_dropped",
                                     "Exposures dropped: the queue was full, or Redis refused "
                                     "or lost their batch (serving never waits for them).",
                                     labels=["reason"])
        for reason, count in dropped.items():
            family.add_metric([reason], count)
        yield family
