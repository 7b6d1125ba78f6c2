"""Putting logged events back on the stream.

The event log is the source of truth: every accepted message is in it before it is
streamed. Two situations leave logged messages outside the stream: Redis lost its data
(a restart without persistence, a failover to an empty replica) while entries were unread
or decisions were live, and an events API process that died with messages it had logged but
not yet streamed (its backlog). `restream` reads the log files written in a window of
*arrival* times (whatever the events' own dates) and delivers the messages received in it
with the ingest's own delivery script. An id whose delivery marker exists is skipped, so
running it twice, or beside a live API, streams nothing twice.

The worker runs it by itself when Redis has lost its data: the key `{ep:events}:epoch` is
set once per dataset, so finding it gone means the data went (`EDGEPICK_RECOVERY_WINDOW_S`
back). Operators run `edgepick recover-stream --since …` after an API crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from typing import Any

from redis.asyncio import Redis

from decision_worker.ingest.event_log import EventLog, encode_json
from decision_worker.ingest.event_time import parse_time
from decision_worker.ingest.ingestion import Ingest
from decision_worker.keys import EPOCH

log = logging.getLogger("edgepick.recovery")


def logged_between(log_: EventLog, since: dt.datetime, until: dt.datetime
                   ) -> list[tuple[str, bytes]]:
    """(messageId, stream payload) of every logged message received in [since, until),
    in the order they were written (blocking: run it in a thread)."""
    pairs: list[tuple[str, bytes]] = []
    for record in log_.received_between(since.date(), until.date()):
        received = parse_time(record.get("receivedAt"))
        if received is not None and since <= received < until:
            pairs.append((str(record["messageId"]), encode_json(record)))
    return pairs


async def restream(ingest: Ingest, log_: EventLog, since: dt.datetime,
                   until: dt.datetime | None = None) -> int:
    """Deliver the messages received in [since, until) that are not delivered; returns
    how many are now delivered by this call (already delivered ones are not counted)."""
    until = until or dt.datetime.now(dt.UTC)
    pairs = await asyncio.to_thread(logged_between, log_, since, until)
    if not pairs:
        return 0
    return await ingest.deliver(pairs, f"recover-{secrets.token_hex(6)}")


async def claim_epoch(redis: Redis) -> bool:
    """True when this dataset had no epoch: the caller set it and should recover."""
    existing: Any = await redis.get(EPOCH)
    if existing is not None:
        return False
    return bool(await redis.set(EPOCH, secrets.token_hex(8), nx=True))
