"""How edgepick connects to Redis. Every connection carries the name `edgepick-<pid>`, so
`CLIENT LIST` tells which process holds it (and the embedded server can tell its own)."""

from __future__ import annotations

import os

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def client_name() -> str:
    return f"edgepick-{os.getpid()}"


def connect_async(url: str, timeout_s: float | None = None,
                  retries: int = 0) -> redis.asyncio.Redis:
    """An asyncio client. With `timeout_s` it fails fast: connecting and each reply are
    bounded, and a command is retried only after a dropped connection, `retries` times (a
    pooled connection that went stale when Redis restarted is replaced within the request)."""
    if timeout_s is None:
        return redis.asyncio.Redis.from_url(url, client_name=client_name())
    return redis.asyncio.Redis.from_url(
        url, client_name=client_name(), socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s if retries else None,
        retry=Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,)),
        health_check_interval=0)


def connect_sync(url: str) -> redis.Redis:
    """A blocking client for the CLI and publishing: bounded waits, so a dead server is an
    error message rather than a hang."""
    return redis.Redis.from_url(url, client_name=client_name(), socket_connect_timeout=5,
                                socket_timeout=10)
