"""`edgepick worker`: a consumer in the stream's consumer group, deciding as events arrive.

The loop (after arq's): read a batch (new entries, or entries other consumers left pending
longer than `claim_idle_s`), process it as one batch, acknowledge only after the write.
- A worker killed mid-batch loses nothing: its entries stay pending in the group and a
  living consumer claims them after the idle timeout; reprocessing is idempotent.
- SIGTERM (`stop()`) lets the batch in hand finish, then the loop returns.
- An entry that cannot be decoded is dead-lettered at once with the reason; one whose
  processing keeps failing is retried alone and dead-lettered after `max_attempts`
  deliveries. Neither stops the worker.
- `run(burst=True)` drains what is there and returns: tests and backfills use it.
- The manifest vanishing from Redis (data lost) does not empty the catalog: the worker keeps
  deciding with the last one it had; a worker that never had one reads no entries (it would
  acknowledge session starts it cannot decide) until a manifest is published.
- Housekeeping trims read stream entries older than `STREAM_RETENTION_S` (never an unread or
  pending one) and dead letters older than `DEAD_LETTER_RETENTION_S`, and re-streams the
  event log's recent window when Redis has lost its data (recovery.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from decision_worker.online.batch import BatchProcessor, BatchResult, Refresh, decode_entry
from decision_worker.ranking.candidates import Catalog
from decision_worker.ingest.event_log import EventLog, event_log_from_url
from decision_worker.ingest.events import Event, Rejection, event_rules
from decision_worker.ingest.ingestion import Ingest, IngestUnavailable
from decision_worker.keys import (
    CONSUMER_GROUP,
    DEAD_LETTER_MAX_LEN,
    DEAD_LETTER_RAW_BYTES,
    DEAD_LETTER_RETENTION_S,
    DEAD_LETTER_STREAM,
    EVENTS_STREAM,
    STREAM_RETENTION_S,
)
from decision_worker.learning.model import LightGBMRanker
from decision_worker.ranking.popularity import STATS_KEY, STATS_REFRESH_S, Popularity
from decision_worker.ranking.ranker import BaselineRanker, Ranker
from decision_worker.ingest.recovery import claim_epoch, restream
from decision_worker.online.redecide_schedule import enqueue_due
from decision_worker.learning.registry import Registry, store_from_url
from decision_worker.online.metrics import WorkerMetrics
from edge_functions.errors import CorruptRecord, EdgepickError
from edge_functions.keys import MANIFEST_KEY, MANIFEST_REV_KEY
from decision_worker.settings import WorkerSettings

log = logging.getLogger("edgepick.worker")
Entry = tuple[str, dict[bytes, bytes]]
BLOCK_MS = 200  # longest a stop request waits for a blocked read
REDIS_RETRY_S = 1.0
MODEL_CHECK_S = 5.0  # how soon a promotion or rollback reaches the worker


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(self, redis: Redis, settings: WorkerSettings, ranker: Ranker | None = None,
                 consumer: str | None = None, metrics: WorkerMetrics | None = None,
                 registry: Registry | None = None) -> None:
        self._redis = redis
        self._settings = settings
        self.consumer = consumer or consumer_name()
        self.metrics = metrics or WorkerMetrics()
        self.batch = BatchProcessor(redis, settings,
                                    ranker if ranker is not None else BaselineRanker())
        self.batch.rules = event_rules(settings)
        self.event_log: EventLog = event_log_from_url(settings.origin)
        self._waiting_for_manifest = False
        self._manifest_missing = False
        self.totals = BatchResult()  # running sums, for the demo's summary and for logs
        self._stopping = False
        self._manifest_rev = -1
        self._stats_loaded_at = 0.0
        self.stats_refresh_s = STATS_REFRESH_S
        self._next_claim = 0.0
        self._next_refresh = 0.0
        # With a ranker given (tests), the registry is not consulted.
        self.registry = registry if ranker is None else None
        if ranker is None and registry is None:
            self.registry = Registry(store_from_url(settings.origin))
        self._next_model_check = 0.0
        self.model_check_s = MODEL_CHECK_S
        self._model_failed: str | None = None

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (the SIGTERM handler)."""
        self._stopping = True

    async def run(self, burst: bool = False) -> None:
        """Consume until `stop()` (or, with `burst`, until nothing is left). Nothing but a
        stop ends the loop: Redis faults are waited out, and an unexpected error is logged
        and the iteration retried, since a worker that exits leaves its work to nobody."""
        log.info("worker %s consuming %s", self.consumer, EVENTS_STREAM)
        group_ready = False
        while not self._stopping:
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                worked = await self.run_once(block=not burst)
            except ResponseError as e:
                if "NOGROUP" in str(e) or "no such key" in str(e):
                    log.warning("the stream or its consumer group disappeared; creating it "
                                "again")
                    group_ready = False
                    continue
                log.warning("Redis refused a command (%s); retrying in %.0fs", e,
                            REDIS_RETRY_S)
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            except RedisError as e:
                log.warning("Redis unavailable (%s); retrying in %.0fs", e, REDIS_RETRY_S)
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - logged; the loop must outlive a bad iteration
                self.metrics.failures.inc()
                log.exception("worker iteration failed; retrying in %.0fs", REDIS_RETRY_S)
                await asyncio.sleep(REDIS_RETRY_S)
                continue
            if burst and not worked:
                return
        log.info("worker %s stopped", self.consumer)

    async def run_once(self, block: bool = False) -> bool:
        """One iteration: housekeeping, then one batch. False when there was nothing to do."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self._next_refresh = now + self._settings.redecide_interval_s
            await enqueue_due(self._redis, self._settings)
        await self._refresh_inputs()
        if self.registry is not None and now >= self._next_model_check:
            self._next_model_check = now + self.model_check_s
            await self.reload_model()
        if not self.batch.catalog.placements:
            if not self._waiting_for_manifest:
                log.warning("no manifest yet: not reading events until one is published")
            self._waiting_for_manifest = True
            if block:
                await asyncio.sleep(BLOCK_MS / 1000)
            return False
        self._waiting_for_manifest = False
        entries: list[Entry] = []
        if now >= self._next_claim or not block:
            self._next_claim = now + min(self._settings.claim_idle_s / 2, 5.0)
            await self._recover_if_emptied()
            await self._measure_lag_and_trim()
            entries = await self._claim_stale()
        if not entries:
            entries = await self._read_new(block)
        if not entries:
            return False
        await asyncio.shield(self._handle(entries))
        return True

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
        return [(_id(i), f) for _, entries in reply or [] for i, f in entries if f is not None]

    async def _claim_stale(self) -> list[Entry]:
        """Entries idle in other (dead) consumers' hands, or failing in ours, past the idle
        timeout. Those delivered `max_attempts` times already are dead-lettered instead."""
        idle_ms = int(self._settings.claim_idle_s * 1000)
        pending: Any = await self._redis.xpending_range(
            EVENTS_STREAM, CONSUMER_GROUP, min="-", max="+",
            count=self._settings.worker_batch, idle=idle_ms)
        if not pending:
            return []
        exhausted = [_id(p["message_id"]) for p in pending
                     if p["times_delivered"] >= self._settings.max_attempts]
        retry = [_id(p["message_id"]) for p in pending
                 if p["times_delivered"] < self._settings.max_attempts]
        for entry_id in exhausted:
            rows: Any = await self._redis.xrange(EVENTS_STREAM, entry_id, entry_id)
            fields = rows[0][1] if rows else {}
            await self._dead_letter([(entry_id, fields)],
                                    f"failed {self._settings.max_attempts} times")
        if not retry:
            return []
        claimed: Any = await self._redis.xclaim(EVENTS_STREAM, CONSUMER_GROUP, self.consumer,
                                                idle_ms, list(retry))
        entries = [(_id(i), f) for i, f in claimed if f]
        gone = set(retry) - {i for i, _ in entries}
        if gone:  # trimmed from the stream while pending: nothing left to process
            await self._redis.xack(EVENTS_STREAM, CONSUMER_GROUP, *gone)
        if entries:
            self.metrics.claimed.inc(len(entries))
            log.info("claimed %d stale entries", len(entries))
        return entries

    async def _measure_lag_and_trim(self) -> None:
        """Lag and pending gauges; then trim what every consumer has read and acknowledged
        (older than the retention), and old dead letters."""
        groups: Any = await self._redis.xinfo_groups(EVENTS_STREAM)
        stream: Any = await self._redis.xinfo_stream(EVENTS_STREAM)
        now_ms = int(time.time() * 1000)
        keep_from = now_ms - int(STREAM_RETENTION_S * 1000)
        for group in groups:
            if _id(group["name"]) == CONSUMER_GROUP:
                newest = _ms(stream["last-generated-id"])
                delivered = _ms(group["last-delivered-id"])
                self.metrics.lag.set(max(0, newest - delivered) / 1000)
                self.metrics.pending.set(group["pending"])
                keep_from = min(keep_from, delivered)
                if group["pending"]:
                    summary: Any = await self._redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)
                    if summary.get("min"):  # None when acknowledged in the meantime
                        keep_from = min(keep_from, _ms(summary["min"]))
        if keep_from > 0:
            await self._redis.xtrim(EVENTS_STREAM, minid=f"{keep_from}-0", approximate=True)
        dead_from = now_ms - int(DEAD_LETTER_RETENTION_S * 1000)
        await self._redis.xtrim(DEAD_LETTER_STREAM, minid=f"{dead_from}-0", approximate=True)

    async def _recover_if_emptied(self) -> None:
        """Redis lost its data (no epoch): put the log's recent window back on the stream,
        so every session start accepted in it is decided again."""
        if not await claim_epoch(self._redis):
            return
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._settings.recovery_window_s)
        ingest = Ingest(self._redis, self.event_log, self._settings.key_secret_bytes,
                        self.batch.rules)
        try:
            restreamed = await restream(ingest, self.event_log, since)
        except (IngestUnavailable, EdgepickError, OSError) as e:
            log.error("could not re-stream the event log after Redis lost its data: %s", e)
            return
        self.metrics.recovered.inc(restreamed)
        if restreamed:
            log.warning("Redis had lost its data: re-streamed %d logged events received "
                        "since %s", restreamed, since.isoformat())

    async def _handle(self, entries: list[Entry]) -> None:
        started = time.perf_counter()
        items: list[tuple[str, Event | Refresh]] = []
        poison: list[tuple[Entry, str]] = []
        for entry in entries:
            decoded = decode_entry(entry[1], self.batch.rules)
            if isinstance(decoded, Rejection):
                poison.append((entry, f"field '{decoded.field}' {decoded.reason}"))
            else:
                items.append((entry[0], decoded))
        for entry, reason in poison:
            await self._dead_letter([entry], reason)
        if not items:
            return
        try:
            result = await self.batch.process(items)
        except RedisError:
            raise  # left pending: retried by the loop, claimed back after the idle timeout
        except Exception:
            log.exception("batch of %d failed; retrying its entries one by one", len(items))
            await self._one_by_one(items)
            return
        await self._redis.xack(EVENTS_STREAM, CONSUMER_GROUP, *[i for i, _ in items])
        self._record(result, len(items), time.perf_counter() - started)

    async def _one_by_one(self, items: list[tuple[str, Event | Refresh]]) -> None:
        for item in items:
            try:
                result = await self.batch.process([item])
            except RedisError:
                raise
            except Exception as e:  # stays pending; dead-lettered after max_attempts
                self.metrics.failures.inc()
                log.warning("entry %s failed: %s", item[0], e)
                continue
            await self._redis.xack(EVENTS_STREAM, CONSUMER_GROUP, item[0])
            self._record(result, 1, 0.0)

    async def _dead_letter(self, entries: Sequence[Entry], reason: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, fields in entries:
                raw = fields.get(b"m") or fields.get(b"r") or b""
                pipe.xadd(DEAD_LETTER_STREAM, {"entry": entry_id, "field": "(entry)",
                                               "reason": reason, "raw": raw[:DEAD_LETTER_RAW_BYTES]},
                          maxlen=DEAD_LETTER_MAX_LEN, approximate=True)
                pipe.xack(EVENTS_STREAM, CONSUMER_GROUP, entry_id)
            await pipe.execute()
        self.metrics.events.labels("dead_letter").inc(len(entries))
        log.warning("dead-lettered %d entr%s: %s", len(entries),
                    "y" if len(entries) == 1 else "ies", reason)

    async def _refresh_inputs(self) -> None:
        """The catalog when the manifest revision moved; popularity every few seconds."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(MANIFEST_REV_KEY)
            stats_due = time.monotonic() - self._stats_loaded_at >= self.stats_refresh_s
            if stats_due:
                pipe.hgetall(STATS_KEY)
            replies = await pipe.execute()
        missing = replies[0] is None
        if missing != self._manifest_missing:
            self._manifest_missing = missing
            self.metrics.manifest_missing.set(1 if missing else 0)
            if missing and self.batch.catalog.placements:
                log.error("the manifest is gone from Redis: deciding with the last catalog "
                          "(rev %d) until one is published", self._manifest_rev)
        rev = int(replies[0] or 0)
        if not missing and rev != self._manifest_rev:
            try:
                self.batch.catalog = Catalog.from_bytes(await self._redis.get(MANIFEST_KEY))
                self._manifest_rev = rev
                log.info("catalog rev %d: %d placements", rev, len(self.batch.catalog.placements))
            except (CorruptRecord, ValueError) as e:
                log.error("manifest rev %d unusable, keeping the previous catalog: %s", rev, e)
                self._manifest_rev = rev
        if stats_due:
            self.batch.popularity = Popularity.from_hash(replies[1])
            self._stats_loaded_at = time.monotonic()

    async def reload_model(self) -> None:
        """Follow the registry's production pointer. A model that does not load, or was
        trained on another feature spec, is refused (logged, counted) and the worker keeps
        scoring with the model it has; it is not retried until the pointer moves again."""
        assert self.registry is not None
        try:
            pointers = await asyncio.to_thread(self.registry.pointers)
        except (EdgepickError, OSError) as e:
            log.warning("model registry unreadable (%s); keeping %s", e, self.batch.ranker.version)
            return
        wanted = pointers.get("production")
        current = self.batch.ranker.version
        if wanted is None:
            if not isinstance(self.batch.ranker, BaselineRanker):
                self.batch.ranker = BaselineRanker()
                log.info("production pointer cleared: scoring with %s", self.batch.ranker.version)
            return
        if wanted in (current, self._model_failed):
            return
        try:
            text, card = await asyncio.to_thread(self.registry.load, wanted)
            ranker = LightGBMRanker(wanted, text, card.get("features", []),
                                    card.get("encodings"))
            compiled = await asyncio.to_thread(ranker.compile,
                                               self._settings.data_dir / "compiled")
        except (EdgepickError, OSError, ValueError) as e:
            self._model_failed = wanted
            self.metrics.model_refusals.inc()
            log.error("model %s refused, still scoring with %s: %s", wanted, current, e)
            return
        self.batch.ranker = ranker
        self._model_failed = None
        log.info("now scoring with %s (%s)", wanted,
                 "compiled" if compiled else "LightGBM predict")

    def reload_stats_now(self) -> None:
        self._stats_loaded_at = 0.0

    def _record(self, result: BatchResult, entries: int, seconds: float) -> None:
        t, m = self.totals, self.metrics
        t.applied += result.applied
        t.duplicates += result.duplicates
        t.late += result.late
        t.decisions += result.decisions
        t.users_decided += result.users_decided
        t.holdout += result.holdout
        t.conflicts += result.conflicts
        t.suppressed += result.suppressed
        t.opted_out += result.opted_out
        t.latencies.extend(result.latencies)
        del t.latencies[:-100_000]
        m.events.labels("applied").inc(result.applied)
        m.events.labels("duplicate").inc(result.duplicates)
        m.events.labels("late").inc(result.late)
        m.events.labels("suppressed").inc(result.suppressed)
        m.events.labels("opted_out").inc(result.opted_out)
        m.decisions.inc(result.decisions)
        m.conflicts.inc(result.conflicts)
        for latency in result.latencies:
            m.freshness.observe(latency)
        if seconds:
            m.batch_seconds.observe(seconds)
            m.batch_size.observe(entries)


def _id(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(entry_id: bytes | str) -> int:
    return int(_id(entry_id).split("-")[0])
