"""The manifest poller's lifecycle. The race that matters (a cancel landing as redis-py's
own timeout expires, which Python 3.11's asyncio.timeout turns into a TimeoutError and
redis-py into a RedisError) cannot be timed against a real server, so a client stands in
that turns the first cancel into that error."""

from __future__ import annotations

import asyncio

from redis.exceptions import TimeoutError as RedisTimeoutError

from edge_functions.manifest import ManifestCache


class CancelBecomesRedisError:
    def __init__(self) -> None:
        self.calls = 0
        self.converted = False

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.calls <= 2:  # start-up: no revision, no document
            return None
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.converted:
                raise
            self.converted = True
            raise RedisTimeoutError("Timeout connecting to server") from None
        return None


def test_stop_finishes_when_a_cancel_comes_back_as_a_redis_error() -> None:
    async def scenario() -> None:
        cache = ManifestCache(CancelBecomesRedisError(), refresh_s=0.01)  # type: ignore[arg-type]
        await cache.start()
        await asyncio.sleep(0.05)  # the poller is inside a GET now
        stopping = asyncio.create_task(cache.stop())
        done, _ = await asyncio.wait({stopping}, timeout=2)
        assert done, "shutdown is still waiting for the manifest poller"

    asyncio.run(scenario())
