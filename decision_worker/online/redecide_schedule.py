"""Scheduled refresh: re-decide active users shortly before their decisions expire.

Every decision write puts the user's tag in a sorted set, scored by when to refresh
(`decided + ttl - margin`). Once an interval, one worker (a lock decides which) moves the
due tags onto the event stream as refresh entries, so refreshes get the same delivery,
claiming and acknowledgement as events. A user with no event within `active_window_s` is
dropped from the set instead of refreshed, which keeps the set to the active users.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from decision_worker.keys import EVENTS_STREAM, REDECIDE_DUE, REDECIDE_LOCK
from decision_worker.settings import WorkerSettings

MAX_PER_ROUND = 5000
# Take the due members and push their score past the next round, so a tag already
# enqueued is not enqueued again before its refresh has been processed.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, tag in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], tag) end
return due
"""


async def enqueue_due(redis: Redis, settings: WorkerSettings, now: float | None = None,
                      force: bool = False) -> int:
    """Enqueue refreshes for the due users; returns how many. `force` skips the lock."""
    now = time.time() if now is None else now
    interval = settings.redecide_interval_s
    if not force and not await redis.set(REDECIDE_LOCK, "1", nx=True,
                                         px=max(1, int(interval * 1000))):
        return 0
    due = await redis.eval(_TAKE_DUE, 1, REDECIDE_DUE, now, now + 2 * interval, MAX_PER_ROUND)
    if not due:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for tag in due:
            tag = tag.decode() if isinstance(tag, bytes) else tag
            pipe.xadd(EVENTS_STREAM, {"r": f"{tag}|{now}"})
        await pipe.execute()
    return len(due)
