"""The worker's side of the decision log (ingest/decision_log.py): one line per decision
written, collected after each batch's Redis write and appended to the origin at most every
`FLUSH_S` (or every `FLUSH_LINES` lines), and when the worker stops.

Why not one durable append per batch before its acknowledgement: an fsync (or an S3 PUT)
per batch cost the worker about 6 % of its throughput (measured), and the log is for
learning, the decisions for serving. The price: a worker killed hard loses at most the
last second of lines (its decisions are in Redis); the off-policy estimates then have a few
decisions fewer, none biased. Likewise an origin that does not take the lines (a full disk,
S3 away) never stops the worker deciding nor sends events to the dead letters: the lines
wait in memory (at most `MAX_PENDING`, the oldest dropped first) for the next flush; every
failure is logged and counted (`edgepick_worker_decision_log_failures_total`, lines
dropped in `edgepick_worker_decision_log_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter

from decision_worker.errors import EventLogError
from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ranking.decide import Decided

log = logging.getLogger("edgepick.worker")
MAX_PENDING = 100_000  # lines (~150 B each): about 15 MB held while the origin is away
FLUSH_S = 1.0
FLUSH_LINES = 20_000


def decision_lines(tag: str, decided: dict[str, Decided]) -> list[dict[str, Any]]:
    """The log lines of one user's decisions (the keyed hash only, never the id), with the
    experiment and what a shadow model would have served when there is one."""
    lines = []
    for placement, d in decided.items():
        line = {"tag": tag, "placement": placement, "variant": d.why.variant,
                "propensity": d.why.propensity, "explored": d.why.explored,
                "model": d.record.model_version, "arm": d.record.arm,
                "decided_at": d.record.decided_at}
        if d.record.experiment:
            line["experiment"] = d.record.experiment
        if d.shadow is not None:
            line["shadow_model"] = d.shadow.model
            line["shadow_ranked"] = list(d.shadow.ranked)
        lines.append(line)
    return lines


class DecisionLogger:
    def __init__(self, decision_log: DecisionLog | None, failures: Counter | None = None,
                 dropped: Counter | None = None) -> None:
        self._log = decision_log  # None: decisions are not logged (benchmarks of parts)
        self._failures = failures
        self._dropped = dropped
        self.pending: list[dict[str, Any]] = []
        self._flushed_at = float("-inf")

    async def write(self, lines: list[dict[str, Any]]) -> None:
        """Take a batch's lines; append what waits when a flush is due."""
        if self._log is None:
            return
        self.pending.extend(lines)
        if len(self.pending) > MAX_PENDING:
            excess = len(self.pending) - MAX_PENDING
            del self.pending[:excess]
            if self._dropped is not None:
                self._dropped.inc(excess)
        if time.monotonic() - self._flushed_at >= FLUSH_S or len(self.pending) >= FLUSH_LINES:
            await self.flush()

    async def flush(self) -> None:
        """Append every waiting line (the worker calls it when it stops)."""
        self._flushed_at = time.monotonic()
        if self._log is None or not self.pending:
            return
        try:
            await asyncio.to_thread(self._log.append, self.pending)
        except EventLogError as e:
            if self._failures is not None:
                self._failures.inc()
            log.warning("decision log not written (%s); %d lines kept for the next flush",
                        e, len(self.pending))
            return
        self.pending = []
