"""The worker's side of the decision log (ingest/decision_log.py): one line per decision
written, appended after the batch's Redis write and before its entries are acknowledged
(one file append, or one object on S3, per batch).

The log is for learning, the decisions are for serving: an origin that does not take the
lines (a full disk, S3 away) must not stop the worker deciding, nor send events to the dead
letters. Lines that could not be written wait in memory (at most `MAX_PENDING`, the oldest
dropped first) and go with the next batch's; every failure is logged and counted
(`edgepick_worker_decision_log_failures_total`, lines dropped in
`edgepick_worker_decision_log_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter

from decision_worker.errors import EventLogError
from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ranking.decide import Decided

log = logging.getLogger("edgepick.worker")
MAX_PENDING = 100_000  # lines (~150 B each): about 15 MB held while the origin is away


def decision_lines(tag: str, decided: dict[str, Decided]) -> list[dict[str, Any]]:
    """The log lines of one user's decisions (the keyed hash only, never the id)."""
    return [{"tag": tag, "placement": placement, "variant": d.why.variant,
             "propensity": d.why.propensity, "explored": d.why.explored,
             "model": d.record.model_version, "arm": d.record.arm,
             "decided_at": d.record.decided_at}
            for placement, d in decided.items()]


class DecisionLogger:
    def __init__(self, decision_log: DecisionLog | None, failures: Counter | None = None,
                 dropped: Counter | None = None) -> None:
        self._log = decision_log  # None: decisions are not logged (benchmarks of parts)
        self._failures = failures
        self._dropped = dropped
        self.pending: list[dict[str, Any]] = []

    async def write(self, lines: list[dict[str, Any]]) -> None:
        if self._log is None or not (lines or self.pending):
            return
        self.pending.extend(lines)
        if len(self.pending) > MAX_PENDING:
            excess = len(self.pending) - MAX_PENDING
            del self.pending[:excess]
            if self._dropped is not None:
                self._dropped.inc(excess)
        try:
            await asyncio.to_thread(self._log.append, self.pending)
        except EventLogError as e:
            if self._failures is not None:
                self._failures.inc()
            log.warning("decision log not written (%s); %d lines kept for the next batch",
                        e, len(self.pending))
            return
        self.pending = []
