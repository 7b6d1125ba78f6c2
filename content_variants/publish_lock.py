"""One publish at a time per placement: a Redis lock per placement (`SET NX PX`).

The manifest transaction already keeps concurrent publishes from losing each other's
writes; the lock keeps them from doing the same work twice and from racing on a
placement's default. It expires by itself if its holder dies, and is released (only by its
holder: compare-and-delete) when the publish ends, however it ends.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from redis import Redis

from content_variants.errors import PublishBusy
from content_variants.keys import publish_lock_key

MAX_RETRY_AFTER_S = 10

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextmanager
def placement_locks(redis: Redis, placements: Iterable[str], ttl_s: float) -> Iterator[None]:
    """Hold the lock of every placement (taken in sorted order) or raise PublishBusy."""
    token = secrets.token_hex(16)
    taken: list[str] = []
    release = redis.register_script(_RELEASE)
    try:
        for placement in sorted(set(placements)):
            key = publish_lock_key(placement)
            if not redis.set(key, token, nx=True, px=max(int(ttl_s * 1000), 1)):
                left_ms = redis.pttl(key)
                retry_s = min(max(math.ceil(max(left_ms, 0) / 1000), 1), MAX_RETRY_AFTER_S)
                raise PublishBusy(placement, retry_s)
            taken.append(key)
        yield
    finally:
        for key in taken:
            release(keys=[key], args=[token])
