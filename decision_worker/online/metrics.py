"""Prometheus metrics of the worker: freshness (event received → decision written) as a
histogram, so p99 and p99.9 can be read, plus throughput, failures and queue lag."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from decision_worker.online.batch_result import BatchResult

def exposure_outcomes(registry: CollectorRegistry) -> Counter:
    return Counter("edgepick_worker_exposures_total",
                   "Exposures read from the edge's stream, by outcome", ["outcome"],
                   registry=registry)


FRESHNESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.exposures = exposure_outcomes(r)  # the edge's exposures, by outcome
        self.events = Counter("edgepick_worker_events_total", "Stream entries by outcome",
                              ["outcome"], registry=r)
        self.decisions = Counter("edgepick_worker_decisions_total",
                                 "Decision records written (user x placement)", registry=r)
        self.freshness = Histogram("edgepick_worker_event_to_decision_seconds",
                                   "Event received by the API to decision written",
                                   buckets=FRESHNESS_BUCKETS, registry=r)
        self.batch_seconds = Histogram("edgepick_worker_batch_seconds",
                                       "Time to process one batch", registry=r,
                                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5, 1.0, 2.5))
        self.batch_size = Histogram("edgepick_worker_batch_entries", "Entries per batch",
                                    buckets=(1, 10, 50, 100, 200, 500, 1000), registry=r)
        self.claimed = Counter("edgepick_worker_claimed_total",
                               "Entries claimed from idle consumers", registry=r)
        self.conflicts = Counter("edgepick_worker_conflicts_total",
                                 "Batches redone because another worker changed a profile",
                                 registry=r)
        self.model_refusals = Counter("edgepick_worker_model_refusals_total",
                                      "Production models refused (corrupt, other feature spec)",
                                      registry=r)
        self.experiment_refusals = Counter(
            "edgepick_worker_experiment_refusals_total",
            "Experiments ignored by this worker (unparsable, or their model did not load)",
            registry=r)
        self.failures = Counter("edgepick_worker_failures_total",
                                "Entries whose processing raised (retried, then dead-lettered)",
                                registry=r)
        self.lag = Gauge("edgepick_worker_lag_seconds",
                         "Age gap between the newest entry and the group's last delivered one",
                         registry=r)
        self.pending = Gauge("edgepick_worker_pending_entries",
                             "Entries delivered but not yet acknowledged", registry=r)
        self.manifest_missing = Gauge("edgepick_worker_manifest_missing",
                                      "1 while the manifest is gone from Redis (the worker "
                                      "decides with its last catalog)", registry=r)
        self.decision_log_failures = Counter(
            "edgepick_worker_decision_log_failures_total",
            "Batches whose decision-log lines the origin did not take (kept for the next)",
            registry=r)
        self.decision_log_dropped = Counter(
            "edgepick_worker_decision_log_dropped_total",
            "Decision-log lines dropped because too many waited for the origin", registry=r)
        self.recovered = Counter("edgepick_worker_recovered_total",
                                 "Logged events re-streamed after Redis lost its data",
                                 registry=r)

    def record(self, result: BatchResult) -> None:
        for outcome, count in (("applied", result.applied), ("duplicate", result.duplicates),
                               ("late", result.late), ("suppressed", result.suppressed),
                               ("opted_out", result.opted_out)):
            self.events.labels(outcome).inc(count)
        self.decisions.inc(result.decisions)
        self.conflicts.inc(result.conflicts)
        for latency in result.latencies:
            self.freshness.observe(latency)
