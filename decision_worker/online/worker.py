"""`edgepick worker`: a consumer in the stream's consumer group, deciding as events arrive.

The loop (after arq's): upkeep (stream_upkeep.py) and fresh inputs (inputs.py), then read
a batch (new entries, or entries other consumers left pending longer than `claim_idle_s`),
process it as one batch, acknowledge only after the write.
- A worker killed mid-batch loses nothing: its entries stay pending in the group and a
  living consumer claims them after the idle timeout; reprocessing is idempotent.
- SIGTERM (`stop()`) lets the batch in hand finish, then the loop returns.
- An entry that cannot be decoded is dead-lettered at once with the reason; one whose
  processing keeps failing is retried alone and dead-lettered after `max_attempts`
  deliveries. Neither stops the worker, and nor does Redis going away or an unexpected
  error in an iteration: only `stop()` ends the loop.
- A worker that never had a manifest reads no entries (it would acknowledge session starts
  it cannot decide) until one is published.
- `run(burst=True)` drains what is there and returns: tests and backfills use it.
- Between batches, at most every `EXPOSURES_EVERY_S`, it also counts the edge's exposures
  (exposures.py), which never hold back the events; a batch's clicks of users in an
  experiment's arm are counted (ranking/arm_counters.py) before its entries are acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog, event_log_from_url
from decision_worker.ingest.events import Event, Rejection, event_rules
from decision_worker.keys import CONSUMER_GROUP, EVENTS_STREAM
from decision_worker.online.batch import BatchProcessor
from decision_worker.online.batch_result import BatchResult
from decision_worker.online.decision_logger import DecisionLogger
from decision_worker.online.exposures import ExposureCounter
from decision_worker.online.heap import HeapSettler, batch_in_hand
from decision_worker.online.inputs import WorkerInputs
from decision_worker.online.metrics import WorkerMetrics
from decision_worker.online.redecide_schedule import enqueue_due
from decision_worker.online.stream_entries import Redecide, decode_entry
from decision_worker.online.stream_upkeep import (
    Entry,
    claim_stale,
    dead_letter,
    entry_id,
    measure_and_trim,
    recover_if_emptied,
)
from decision_worker.ranking.arm_counters import record_engagement
from decision_worker.ranking.model_registry import ModelRegistry
from decision_worker.ranking.ranker import BaselineRanker, Ranker
from decision_worker.settings import WorkerSettings
from object_store import from_url

log = logging.getLogger("edgepick.worker")
BLOCK_MS = 200  # longest a stop request waits for a blocked read
REDIS_RETRY_S = 1.0
EXPOSURES_EVERY_S = 0.5


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(self, redis: Redis, settings: WorkerSettings, ranker: Ranker | None = None,
                 consumer: str | None = None, metrics: WorkerMetrics | None = None,
                 registry: ModelRegistry | None = None) -> None:
        self._redis = redis
        self._settings = settings
        self.consumer = consumer or consumer_name()
        self.metrics = metrics or WorkerMetrics()
        self.batch = BatchProcessor(redis, settings,
                                    ranker if ranker is not None else BaselineRanker())
        self.batch.rules = event_rules(settings)
        self.event_log: EventLog = event_log_from_url(settings.origin)
        self.batch.decision_log = DecisionLogger(DecisionLog(self.event_log.store),
                                                 self.metrics.decision_log_failures,
                                                 self.metrics.decision_log_dropped)
        if ranker is None and registry is None:
            registry = ModelRegistry(from_url(settings.origin))
        # With a ranker given (tests), the registry is not consulted for production; it
        # still is for the experiments' models.
        self.inputs = WorkerInputs(redis, self.batch, self.metrics,
                                   registry if ranker is None else None,
                                   settings.data_dir / "compiled",
                                   registry or ModelRegistry(from_url(settings.origin)))
        self.inputs.stats_reload_s = settings.stats_reload_s
        self.exposures = ExposureCounter(redis, self.event_log, settings.key_secret_bytes,
                                         self.consumer, self.metrics.exposures)
        self._next_exposures = 0.0
        self.totals = BatchResult()  # running sums, for the demo's summary and for logs
        self._stopping = False
        self._waiting_for_manifest = False
        self._next_claim = 0.0
        self._next_redecide = 0.0
        self._heap = HeapSettler()

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (the SIGTERM handler)."""
        self._stopping = True

    async def run(self, burst: bool = False) -> None:
        """Consume until `stop()` (or, with `burst`, until nothing is left)."""
        log.info("worker %s consuming %s", self.consumer, EVENTS_STREAM)
        group_ready = False
        while not self._stopping:
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                worked = await self.run_once(block=not burst)
            except ResponseError as e:
                group_ready = "NOGROUP" not in str(e) and "no such key" not in str(e)
                if not group_ready:
                    log.warning("the stream or its consumer group disappeared; creating it "
                                "again")
                    continue
                await self._pause(f"Redis refused a command ({e})")
                continue
            except RedisError as e:
                await self._pause(f"Redis unavailable ({e})")
                continue
            except Exception:  # noqa: BLE001 - logged; the loop must outlive a bad iteration
                self.metrics.failures.inc()
                log.exception("worker iteration failed")
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            if burst and not worked:
                break
        await self.batch.decision_log.flush()
        log.info("worker %s stopped", self.consumer)

    async def _pause(self, why: str) -> None:
        log.warning("%s; retrying in %.0fs", why, REDIS_RETRY_S)
        await asyncio.sleep(REDIS_RETRY_S)

    async def run_once(self, block: bool = False) -> bool:
        """One iteration: upkeep, then one batch. False when there was nothing to do."""
        now = time.monotonic()
        if now >= self._next_redecide:
            self._next_redecide = now + self._settings.redecide_interval_s
            await enqueue_due(self._redis, self._settings)
        await self.inputs.update_catalog_and_popularity()
        await self.inputs.update_model()
        await self.inputs.update_experiments()
        exposures = await self._count_exposures(now, block)
        if not self.batch.catalog.placements:
            if not self._waiting_for_manifest:
                log.warning("no manifest yet: not reading events until one is published")
            self._waiting_for_manifest = True
            if block:
                await asyncio.sleep(BLOCK_MS / 1000)
            return exposures > 0
        self._waiting_for_manifest = False
        self._heap.settle(self.batch.catalog, self.batch.ranker, self.batch.experiments)
        entries: list[Entry] = []
        if now >= self._next_claim or not block:
            self._next_claim = now + min(self._settings.claim_idle_s / 2, 5.0)
            await recover_if_emptied(self._redis, self._settings, self.event_log,
                                     self.batch.rules, self.metrics)
            await measure_and_trim(self._redis, self.metrics)
            entries = await claim_stale(self._redis, self.consumer, self._settings,
                                        self.metrics)
        if not entries:
            entries = await self._read_new(block and not exposures)
        if not entries:
            return exposures > 0
        await asyncio.shield(self._handle(entries))
        return True

    async def _count_exposures(self, now: float, block: bool) -> int:
        """Count the edge's exposures when due (every round in burst mode): entries handled."""
        if block and now < self._next_exposures:
            return 0
        self._next_exposures = now + EXPOSURES_EVERY_S
        try:
            return await self.exposures.run_once()
        except RedisError:
            raise
        except Exception:  # noqa: BLE001 - logged; exposures must not stop the events
            self.metrics.failures.inc()
            log.exception("counting exposures failed")
            return 0

    async def ensure_group(self) -> None:
        try:
            # From the start of the stream: events appended before any worker existed count.
            await self._redis.xgroup_create(EVENTS_STREAM, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _read_new(self, block: bool) -> list[Entry]:
        reply: Any = await self._redis.xreadgroup(
            CONSUMER_GROUP, self.consumer, {EVENTS_STREAM: ">"},
            count=self._settings.worker_batch, block=BLOCK_MS if block else None)
        return [(entry_id(i), f) for _, entries in reply or [] for i, f in entries
                if f is not None]

    async def _handle(self, entries: list[Entry]) -> None:
        started = time.perf_counter()
        items: list[tuple[str, Event | Redecide]] = []
        for entry in entries:
            decoded = decode_entry(entry[1], self.batch.rules)
            if isinstance(decoded, Rejection):
                await dead_letter(self._redis, self.metrics, [entry],
                                  f"field '{decoded.field}' {decoded.reason}")
            else:
                items.append((entry[0], decoded))
        if not items:
            return
        try:
            with batch_in_hand():
                result = await self.batch.process(items)
        except RedisError:
            raise  # left pending: retried by the loop, claimed back after the idle timeout
        except Exception:  # noqa: BLE001 - one bad entry must not hold back the batch
            log.exception("batch of %d failed; retrying its entries one by one", len(items))
            await self._one_by_one(items)
            return
        await self._count_engagement(result)
        await self._redis.xack(EVENTS_STREAM, CONSUMER_GROUP, *[i for i, _ in items])
        self._record(result, len(items), time.perf_counter() - started)

    async def _one_by_one(self, items: list[tuple[str, Event | Redecide]]) -> None:
        for item in items:
            try:
                result = await self.batch.process([item])
            except RedisError:
                raise
            except Exception as e:  # noqa: BLE001 - stays pending; dead-lettered at max_attempts
                self.metrics.failures.inc()
                log.warning("entry %s failed: %s", item[0], e)
                continue
            await self._count_engagement(result)
            await self._redis.xack(EVENTS_STREAM, CONSUMER_GROUP, item[0])
            self._record(result, 1, 0.0)

    async def _count_engagement(self, result: BatchResult) -> None:
        """The batch's clicks and conversions of users in experiments' arms, into the arm
        counters (one script call). Once: a redelivered entry is a duplicate for the profile,
        which then collects nothing."""
        if result.arm_engagement:
            await record_engagement(self._redis, result.arm_engagement, self.exposures.steps)

    def _record(self, result: BatchResult, entries: int, seconds: float) -> None:
        self.totals.add(result)
        self.metrics.record(result)
        if seconds:
            self.metrics.batch_seconds.observe(seconds)
            self.metrics.batch_size.observe(entries)
