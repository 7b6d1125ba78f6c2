"""What every `edgepick` command shares: one-line errors, settings per package (embedded
Redis started only when no Redis URL is configured), a Redis client."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click
from redis import Redis
from redis.exceptions import RedisError

from edge_functions.env import CommonSettings
from edge_functions.errors import EdgepickError

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=CommonSettings)

if TYPE_CHECKING:
    from content_variants.settings import PublisherSettings
    from decision_worker.settings import WorkerSettings


def one_line_errors(command: F) -> F:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EdgepickError as e:
            click.echo(f"edgepick: error: {e}", err=True)
            sys.exit(1)
        except RedisError as e:
            click.echo(f"edgepick: error: Redis: {e}", err=True)
            sys.exit(1)

    return run  # type: ignore[return-value]


def package_settings(kind: type[S], **overrides: object) -> S:
    """The command's own package settings (only its variables are read and validated);
    embedded Redis is started, and imported, only when no Redis URL is configured."""
    settings = kind.from_env(None, **overrides)
    if settings.redis_url is None:
        from edgepick.embedded_redis import with_redis

        settings = with_redis(settings)
    return settings


def publisher_settings() -> PublisherSettings:
    from content_variants.settings import PublisherSettings

    return package_settings(PublisherSettings)


def worker_settings() -> WorkerSettings:
    from decision_worker.settings import WorkerSettings

    return package_settings(WorkerSettings)


def redis_client(settings: CommonSettings) -> Redis:
    from edge_functions.redis_client import connect_sync

    assert settings.redis_url is not None
    return connect_sync(settings.redis_url)
