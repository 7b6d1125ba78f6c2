"""Stream upkeep, done by every worker between batches.

- Gauges: lag (age gap between the newest entry and the group's last delivered one) and
  entries pending.
- Trimming: entries every consumer has read and acknowledged are trimmed once older than
  `STREAM_RETENTION_S` (they are archived: the event log holds every message before it is
  streamed), never an unread or a pending one; dead letters after `DEAD_LETTER_RETENTION_S`.
- Claiming: entries idle in a dead consumer's hands (or failing in ours) longer than
  `claim_idle_s` are claimed; those already delivered `max_attempts` times are dead-lettered.
- Recovery: a Redis that lost its data (no epoch) gets the event log's recent window back.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from decision_worker.errors import IngestUnavailable
from decision_worker.ingest.dead_letters import DeadLetter, add_dead_letters
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import EventRules
from decision_worker.ingest.ingestion import Ingest
from decision_worker.ingest.recovery import claim_epoch, restream
from decision_worker.keys import (
    CONSUMER_GROUP,
    DEAD_LETTER_RETENTION_S,
    DEAD_LETTER_STREAM,
    EVENTS_STREAM,
    STREAM_RETENTION_S,
)
from decision_worker.online.metrics import WorkerMetrics
from decision_worker.settings import WorkerSettings
from edge_functions.errors import EdgepickError

log = logging.getLogger("edgepick.worker")
Entry = tuple[str, dict[bytes, bytes]]


def entry_id(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_entry_id(value: bytes | str) -> tuple[int, int]:
    """A stream id as (milliseconds, sequence), so ids compare as Redis orders them."""
    ms, _, seq = entry_id(value).partition("-")
    return int(ms), int(seq or 0)


async def measure_and_trim(redis: Redis, metrics: WorkerMetrics) -> None:
    groups: Any = await redis.xinfo_groups(EVENTS_STREAM)
    stream: Any = await redis.xinfo_stream(EVENTS_STREAM)
    now_ms = int(time.time() * 1000)
    keep_from = (now_ms - int(STREAM_RETENTION_S * 1000), 0)
    for group in groups:
        if entry_id(group["name"]) != CONSUMER_GROUP:
            continue
        newest = parse_entry_id(stream["last-generated-id"])
        delivered = parse_entry_id(group["last-delivered-id"])
        metrics.lag.set(max(0, newest[0] - delivered[0]) / 1000)
        metrics.pending.set(group["pending"])
        keep_from = min(keep_from, delivered)
        if group["pending"]:
            summary: Any = await redis.xpending(EVENTS_STREAM, CONSUMER_GROUP)
            if summary.get("min"):  # None when acknowledged in the meantime
                keep_from = min(keep_from, parse_entry_id(summary["min"]))
    if keep_from > (0, 0):
        # The exact id: a batch appended within one millisecond is trimmed as a whole.
        await redis.xtrim(EVENTS_STREAM, minid=f"{keep_from[0]}-{keep_from[1]}",
                          approximate=True)
    dead_from = now_ms - int(DEAD_LETTER_RETENTION_S * 1000)
    await redis.xtrim(DEAD_LETTER_STREAM, minid=f"{dead_from}-0", approximate=True)


async def dead_letter(redis: Redis, metrics: WorkerMetrics, entries: Sequence[Entry],
                      reason: str) -> None:
    """Dead-letter stream entries and acknowledge them, in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        add_dead_letters(pipe, [DeadLetter("(entry)", reason,
                                           fields.get(b"m") or fields.get(b"r") or b"",
                                           entry=entry)
                                for entry, fields in entries], dt.datetime.now(dt.UTC))
        for entry, _ in entries:
            pipe.xack(EVENTS_STREAM, CONSUMER_GROUP, entry)
        await pipe.execute()
    metrics.events.labels("dead_letter").inc(len(entries))
    log.warning("dead-lettered %d entr%s: %s", len(entries),
                "y" if len(entries) == 1 else "ies", reason)


async def claim_stale(redis: Redis, consumer: str, settings: WorkerSettings,
                      metrics: WorkerMetrics) -> list[Entry]:
    """Entries idle in other (dead) consumers' hands, or failing in ours, past the idle
    timeout. Those delivered `max_attempts` times already are dead-lettered instead."""
    idle_ms = int(settings.claim_idle_s * 1000)
    pending: Any = await redis.xpending_range(EVENTS_STREAM, CONSUMER_GROUP, min="-", max="+",
                                              count=settings.worker_batch, idle=idle_ms)
    exhausted = [entry_id(p["message_id"]) for p in pending or []
                 if p["times_delivered"] >= settings.max_attempts]
    retry = [entry_id(p["message_id"]) for p in pending or []
             if p["times_delivered"] < settings.max_attempts]
    for entry in exhausted:
        rows: Any = await redis.xrange(EVENTS_STREAM, entry, entry)
        await dead_letter(redis, metrics, [(entry, rows[0][1] if rows else {})],
                          f"failed {settings.max_attempts} times")
    if not retry:
        return []
    claimed: Any = await redis.xclaim(EVENTS_STREAM, CONSUMER_GROUP, consumer, idle_ms,
                                      list(retry))
    entries = [(entry_id(i), f) for i, f in claimed if f]
    gone = set(retry) - {i for i, _ in entries}
    if gone:  # trimmed from the stream while pending: nothing left to process
        await redis.xack(EVENTS_STREAM, CONSUMER_GROUP, *gone)
    if entries:
        metrics.claimed.inc(len(entries))
        log.info("claimed %d stale entries", len(entries))
    return entries


async def recover_if_emptied(redis: Redis, settings: WorkerSettings, event_log: EventLog,
                             rules: EventRules, metrics: WorkerMetrics) -> None:
    """Redis lost its data (no epoch): put the log's recent window back on the stream, so
    every session start accepted in it is decided again."""
    if not await claim_epoch(redis):
        return
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.recovery_window_s)
    ingest = Ingest(redis, event_log, settings.key_secret_bytes, rules)
    try:
        restreamed = await restream(ingest, event_log, since)
    except (IngestUnavailable, EdgepickError, OSError) as e:
        log.error("could not re-stream the event log after Redis lost its data: %s", e)
        return
    metrics.recovered.inc(restreamed)
    if restreamed:
        log.warning("Redis had lost its data: re-streamed %d logged events received since %s",
                    restreamed, since.isoformat())
