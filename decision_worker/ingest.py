"""Ingestion: validate a request's messages, dead-letter the bad ones, log and stream the good.

Order matters for "nothing valid is lost": the durable log is written first (fsynced), then
one Lua script per request sets each message's idempotency marker and appends the new ones
to the stream atomically. A sender that retries after a failure may leave a message twice in
the log (readers deduplicate by messageId) but never twice in the stream, and never loses it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field

from redis.asyncio import Redis

from decision_worker.event_log import EventLog, encode_json
from decision_worker.events import Event, Rejection, parse_request
from decision_worker.keys import (
    DEAD_LETTER_MAX_LEN,
    DEAD_LETTER_STREAM,
    EVENTS_STREAM,
    SEEN_PREFIX,
    SEEN_TTL_S,
    STREAM_MAX_LEN,
)

# ARGV: seen prefix, ttl, maxlen, then (messageId, payload) pairs. Returns 1 (new) / 0 (seen).
_APPEND_NEW = """
local prefix, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  if redis.call('SET', prefix .. ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'm', ARGV[i + 1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""
MAX_DEAD_LETTER_RAW = 32 * 1024


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)


class Ingest:
    def __init__(self, redis: Redis, log: EventLog) -> None:
        self._redis = redis
        self._log = log
        self._append_new = redis.register_script(_APPEND_NEW)

    async def accept(self, body: bytes, received_at: dt.datetime | None = None) -> IngestResult:
        """Raises RequestRejected when the body as a whole is unusable."""
        received_at = received_at or dt.datetime.now(dt.UTC)
        events, rejections = parse_request(body, received_at)
        result = IngestResult(rejections=rejections)
        if rejections:
            await self._dead_letter(rejections, received_at)
        if not events:
            return result
        records = [_log_record(e, received_at) for e in events]
        await asyncio.to_thread(self._log.append, received_at, records)
        args: list[str | int | bytes] = [SEEN_PREFIX, SEEN_TTL_S, STREAM_MAX_LEN]
        for event, record in zip(events, records, strict=True):
            args += [event.message_id, encode_json(record)]
        flags = await self._append_new(keys=[EVENTS_STREAM], args=args)
        result.accepted = sum(flags)
        result.duplicates = len(flags) - result.accepted
        return result

    async def _dead_letter(self, rejections: list[Rejection], received_at: dt.datetime) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for rejection in rejections:
                raw = json.dumps(rejection.raw, default=str)[:MAX_DEAD_LETTER_RAW]
                pipe.xadd(DEAD_LETTER_STREAM, {
                    "index": rejection.index, "field": rejection.field,
                    "reason": rejection.reason, "received_at": received_at.isoformat(),
                    "raw": raw}, maxlen=DEAD_LETTER_MAX_LEN, approximate=True)
            await pipe.execute()


def _log_record(event: Event, received_at: dt.datetime) -> dict[str, object]:
    return {**event.raw, "messageId": event.message_id,
            "receivedAt": received_at.isoformat().replace("+00:00", "Z")}
