"""Ingestion: validate a request's messages, dead-letter the bad ones, log and stream the good.

"Nothing accepted is lost, nothing is half-taken": a request is answered 200/400 only once
every valid message is both in the durable event log and in the stream, or refused with a
reason. The steps, each bounded in time:

1. Validate everything (events.py). Nothing is written for a request that does not parse.
2. Reserve the messageIds (one Lua script): each id's marker `{ep:events}:seen:<id>` is set
   to `p:<token>` (this request's token) unless it exists. An id already delivered (`d:…`)
   is a duplicate; one reserved by another request in flight is "busy" (the request is
   refused with 503 so the sender retries later); a suppressed user's message is dropped
   (`edgepick forget`). A stream longer than `STREAM_MAX_LEN` (the workers are far behind)
   refuses the request: back-pressure instead of trimming entries nobody has read.
3. Append the new messages to the event log (fsynced / a completed PUT).
4. Stream them and mark them delivered (`d:<token>`) in one Lua script.

Redis down or frozen in step 2: 503 with Retry-After, nothing written. The log failing in
step 3: reservations released, 503. Redis failing in step 4: the messages are in the log,
so they go to an in-process backlog that a background task streams as soon as Redis answers
(the same script; the token makes it idempotent), and the answer is 503: a sender's retry
then finds them busy, and later duplicate. A process that dies with a backlog leaves messages
in the log that are not in the stream: `edgepick recover-stream` (and the worker, after it
finds Redis emptied) replays the log's recent window through step 4 (see recovery.py).
Retrying any step after a dropped connection is safe: the markers carry the token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from decision_worker.errors import IngestUnavailable
from decision_worker.ingest.dead_letters import DeadLetter, add_dead_letters
from decision_worker.ingest.event_log import EventLog, encode_json
from decision_worker.ingest.events import DEFAULT_RULES, Event, EventRules, Rejection, parse_request
from decision_worker.keys import (
    EVENTS_STREAM,
    RESERVE_TTL_S,
    SEEN_PREFIX,
    SEEN_TTL_S,
    STREAM_MAX_LEN,
    SUPPRESSED,
)
from edge_functions.errors import EdgepickError
from edge_functions.keys import user_tag

log = logging.getLogger("edgepick.ingest")

# KEYS: stream, suppressed hash. ARGV: seen prefix, token, reserve ttl, stream max length,
# then (messageId, comma-separated user tags) pairs. Returns {'full'} or one code per id:
# 1 new (reserved for us), 0 duplicate, 2 busy (another request), 3 suppressed.
_RESERVE = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[4]) then return {'full'} end
local prefix, mine, done = ARGV[1], 'p:' .. ARGV[2], 'd:' .. ARGV[2]
local out = {}
for i = 5, #ARGV, 2 do
  local code = nil
  for tag in string.gmatch(ARGV[i + 1], '[^,]+') do
    if redis.call('HEXISTS', KEYS[2], tag) == 1 then code = 3 end
  end
  if code == nil then
    local marker = redis.call('GET', prefix .. ARGV[i])
    if not marker then
      redis.call('SET', prefix .. ARGV[i], mine, 'EX', ARGV[3])
      code = 1
    elseif marker == mine or marker == done then code = 1
    elseif string.sub(marker, 1, 2) == 'p:' then code = 2
    else code = 0 end
  end
  out[#out + 1] = code
end
return out
"""
# KEYS: stream. ARGV: seen prefix, token, done ttl, then (messageId, payload) pairs.
# Streams every id whose marker is ours or gone; returns how many are now delivered by us.
_DELIVER = """
local prefix, mine, done = ARGV[1], 'p:' .. ARGV[2], 'd:' .. ARGV[2]
local delivered = 0
for i = 4, #ARGV, 2 do
  local marker = redis.call('GET', prefix .. ARGV[i])
  if marker == done then
    delivered = delivered + 1
  elseif not marker or marker == mine then
    redis.call('XADD', KEYS[1], '*', 'm', ARGV[i + 1])
    redis.call('SET', prefix .. ARGV[i], done, 'EX', ARGV[3])
    delivered = delivered + 1
  end
end
return delivered
"""
# KEYS: none besides the markers. ARGV: seen prefix, token, then messageIds.
_RELEASE = """
local mine = 'p:' .. ARGV[2]
for i = 3, #ARGV do
  if redis.call('GET', ARGV[1] .. ARGV[i]) == mine then redis.call('DEL', ARGV[1] .. ARGV[i]) end
end
return 1
"""
MAX_BACKLOG_MESSAGES = 200_000  # in memory while Redis is away; beyond it, refuse at once
DELIVER_CHUNK = 500  # messages per delivery script call during recovery


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejections: list[Rejection] = field(default_factory=list)


@dataclass
class _Delivery:
    token: str
    pairs: list[tuple[str, bytes]]  # (messageId, stream payload)


class Ingest:
    def __init__(self, redis: Redis, log_: EventLog, secret: bytes,
                 rules: EventRules = DEFAULT_RULES, timeout_s: float = 2.0,
                 dedupe_window_s: int = SEEN_TTL_S) -> None:
        self._redis = redis
        self.event_log = log_
        self._secret = secret
        self._rules = rules
        self._timeout_s = timeout_s
        self._dedupe_window_s = dedupe_window_s
        self._reserve = redis.register_script(_RESERVE)
        self._deliver = redis.register_script(_DELIVER)
        self._release = redis.register_script(_RELEASE)
        self.backlog: deque[_Delivery] = deque()

    @property
    def backlog_messages(self) -> int:
        return sum(len(d.pairs) for d in self.backlog)

    async def accept(self, body: bytes, received_at: dt.datetime | None = None) -> IngestResult:
        """Raises RequestRejected when the body as a whole is unusable, IngestUnavailable
        when Redis or the event log cannot take it now (nothing accepted is then lost)."""
        received_at = received_at or dt.datetime.now(dt.UTC)
        events, rejections = parse_request(body, received_at, self._rules)
        if self.backlog_messages >= MAX_BACKLOG_MESSAGES:
            raise IngestUnavailable("the stream is unreachable and the backlog is full", 5)
        result = IngestResult(rejections=rejections)
        unique: dict[str, Event] = {}
        for event in events:
            if event.message_id in unique:
                result.duplicates += 1
            else:
                unique[event.message_id] = event
        token = secrets.token_hex(8)
        codes = await self._bounded(self._reserve_ids(token, list(unique.values())),
                                    "reserving messageIds")
        new = [e for e, code in zip(unique.values(), codes, strict=True) if code == 1]
        if any(code == 2 for code in codes):
            await self._release_quietly(token, new)
            raise IngestUnavailable("some messageIds are being delivered by another request")
        result.duplicates += sum(code == 0 for code in codes)
        result.suppressed += sum(code == 3 for code in codes)
        if rejections:
            await self._bounded(self._dead_letter(rejections, received_at), "dead-lettering")
        if not new:
            return result
        records = [log_record(e, received_at) for e in new]
        try:
            await asyncio.to_thread(self.event_log.append, received_at,
                                    [(e.timestamp, r) for e, r in zip(new, records, strict=True)])
        except (EdgepickError, OSError) as e:
            await self._release_quietly(token, new)
            raise IngestUnavailable(f"the event log cannot be written: {e}", 5) from e
        delivery = _Delivery(token, [(e.message_id, encode_json(r))
                                     for e, r in zip(new, records, strict=True)])
        try:
            await self._bounded(self._deliver_one(delivery), "streaming")
        except IngestUnavailable:
            self.backlog.append(delivery)
            log.warning("stream unavailable: %d logged messages wait in the backlog",
                        len(delivery.pairs))
            raise
        result.accepted = len(new)
        return result

    async def drain_backlog(self) -> int:
        """Stream what earlier requests logged but could not stream; returns how many."""
        done = 0
        while self.backlog:
            delivery = self.backlog[0]
            await self._bounded(self._deliver_one(delivery), "streaming the backlog")
            self.backlog.popleft()
            done += len(delivery.pairs)
        return done

    async def deliver(self, pairs: list[tuple[str, bytes]], token: str) -> int:
        """Stream logged messages that may not be in the stream (recovery); idempotent."""
        delivered = 0
        for start in range(0, len(pairs), DELIVER_CHUNK):
            chunk = _Delivery(token, pairs[start:start + DELIVER_CHUNK])
            delivered += await self._bounded(self._deliver_one(chunk), "recovering")
        return delivered

    async def _reserve_ids(self, token: str, events: list[Event]) -> list[int | str]:
        if not events:
            return []
        args: list[Any] = [SEEN_PREFIX, token, RESERVE_TTL_S, STREAM_MAX_LEN]
        for event in events:
            args += [event.message_id, ",".join(self._tags(event))]
        codes: list[Any] = await self._reserve(keys=[EVENTS_STREAM, SUPPRESSED], args=args)
        if codes and codes[0] in (b"full", "full"):
            raise IngestUnavailable(f"the event stream holds {STREAM_MAX_LEN:,} unread "
                                    "entries: the workers are behind", 5)
        return [int(c) for c in codes]

    def _tags(self, event: Event) -> list[str]:
        ids = {event.user_id, event.anonymous_id, event.previous_id} - {None}
        return [user_tag(self._secret, i) for i in ids if i is not None]

    async def _deliver_one(self, delivery: _Delivery) -> int:
        args: list[Any] = [SEEN_PREFIX, delivery.token, self._dedupe_window_s]
        for message_id, payload in delivery.pairs:
            args += [message_id, payload]
        return int(await self._deliver(keys=[EVENTS_STREAM], args=args))

    async def _release_quietly(self, token: str, events: list[Event]) -> None:
        if not events:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._release(keys=[], args=[SEEN_PREFIX, token,
                                                   *(e.message_id for e in events)])
        except (RedisError, OSError, TimeoutError) as e:  # they expire on their own
            log.warning("could not release reservations (%s); they expire in %ds", e,
                        RESERVE_TTL_S)

    async def _bounded(self, step: Any, what: str) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await step
        except TimeoutError as e:
            raise IngestUnavailable(f"Redis did not answer within {self._timeout_s:g}s "
                                    f"({what})") from e
        except (RedisError, OSError) as e:
            raise IngestUnavailable(f"Redis is unavailable ({what}): {e}") from e

    async def _dead_letter(self, rejections: list[Rejection], received_at: dt.datetime) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            add_dead_letters(pipe, [DeadLetter(r.field, r.reason, r.raw, index=r.index)
                                    for r in rejections], received_at)
            await pipe.execute()


def log_record(event: Event, received_at: dt.datetime) -> dict[str, Any]:
    """The message as the event log and the stream keep it."""
    return {**event.raw, "messageId": event.message_id,
            "receivedAt": received_at.isoformat().replace("+00:00", "Z")}
