"""`edgepick …`: parse arguments, build clients once, call the packages, print results.

Every expected failure (bad input, unreachable Redis, a refused publish) ends with one line
on stderr and a non-zero exit; nothing here holds logic of its own.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
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


def _one_line_errors(command: F) -> F:
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


def _settings(kind: type[S], **overrides: object) -> S:
    """The command's own package settings (only its variables are read and validated);
    embedded Redis is started, and imported, only when no Redis URL is configured."""
    settings = kind.from_env(None, **overrides)
    if settings.redis_url is None:
        from edgepick.embedded_redis import with_redis

        settings = with_redis(settings)
    return settings


def _publisher() -> PublisherSettings:
    from content_variants.settings import PublisherSettings

    return _settings(PublisherSettings)


def _worker() -> WorkerSettings:
    from decision_worker.settings import WorkerSettings

    return _settings(WorkerSettings)


def _redis(settings: CommonSettings) -> Redis:
    from edge_functions.redis_client import connect_sync

    assert settings.redis_url is not None
    return connect_sync(settings.redis_url)


@click.group()
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def cli(log_level: str) -> None:
    """edgepick: edge-first personalization. Configuration comes from EDGEPICK_* variables."""
    from edge_functions.logs import configure

    configure(log_level.upper())


@cli.command()
@click.argument("content_dir", type=click.Path(path_type=Path))
@_one_line_errors
def publish(content_dir: Path) -> None:
    """Render CONTENT_DIR, upload new variants, pre-warm them, then make them eligible."""
    from content_variants.limits import PublishLimits
    from content_variants.origin import origin_from_url
    from content_variants.prewarm import Prewarmer
    from edgepick.reporting import publish_with_progress

    settings = _publisher()
    prewarmer = Prewarmer(settings.cdn_base, settings.prewarm_timeout_s)
    try:
        report = publish_with_progress(content_dir, _redis(settings),
                                       origin_from_url(settings.origin), prewarmer,
                                       settings.max_variant_bytes,
                                       limits=PublishLimits.from_settings(settings))
    finally:
        prewarmer.close()
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("placement")
@click.argument("variant")
@click.option("--replace-default", metavar="VARIANT",
              help="New default, required when VARIANT is the placement's default.")
@_one_line_errors
def unpublish(placement: str, variant: str, replace_default: str | None) -> None:
    """Remove VARIANT of PLACEMENT from the manifest (its object stays: URLs are immutable)."""
    from content_variants.manifest_writer import unpublish as unpublish_variant
    from content_variants.origin import origin_from_url
    from edge_functions.identifiers import check_id

    check_id("placement", placement)
    check_id("variant", variant)
    if replace_default is not None:
        check_id("variant", replace_default)
    settings = _publisher()
    doc = unpublish_variant(_redis(settings), placement, variant, replace_default,
                            origin_from_url(settings.origin))
    default = doc["placements"][placement]["default"]
    click.echo(f"unpublished {placement}/{variant}; default is {default}; "
               f"manifest rev {doc['rev']}")


@cli.command()
@click.argument("user")
@click.argument("placement")
@click.argument("variants", nargs=-1, required=True)
@click.option("--ttl", type=int, default=None, help="Seconds (default EDGEPICK_DECISION_TTL_S).")
@_one_line_errors
def pin(user: str, placement: str, variants: tuple[str, ...], ttl: int | None) -> None:
    """Decide by hand: USER sees VARIANTS (first that is still published) in PLACEMENT."""
    from decision_worker.online.pinning import pin as pin_decision

    settings = _worker()
    ttl_s = settings.decision_ttl_s if ttl is None else ttl
    pin_decision(_redis(settings), settings.key_secret_bytes, user, placement, list(variants),
                 ttl_s)
    click.echo(f"pinned {placement} → {', '.join(variants)} for that user (ttl {ttl_s}s)")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@_one_line_errors
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve GET /p/{placement}, /p?placements=…, /healthz and /metrics."""
    import uvicorn

    from edge_functions.http_protocol import http_protocol
    from edge_functions.settings import ServingSettings

    settings = _settings(ServingSettings)
    # Worker processes read the environment again: hand them the resolved Redis URL.
    assert settings.redis_url is not None
    os.environ["EDGEPICK_REDIS_URL"] = settings.redis_url
    os.environ.setdefault("EDGEPICK_LOG_LEVEL", logging.getLevelName(logging.getLogger().level))
    uvicorn.run("edge_functions.app:create_app_from_env", factory=True, host=host, port=port,
                workers=workers, access_log=access_log, log_config=None,
                loop="uvloop", http=http_protocol(settings))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535))
@_one_line_errors
def api(host: str, port: int) -> None:
    """Serve POST /v1/events (Segment-spec), /healthz and /metrics."""
    import uvicorn

    from decision_worker.api import create_api
    from edge_functions.http_protocol import http_protocol

    settings = _worker()
    uvicorn.run(create_api(settings), host=host, port=port, access_log=False,
                log_config=None, loop="uvloop", http=http_protocol(settings))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8002, show_default=True, type=click.IntRange(1, 65535))
@_one_line_errors
def hooks(host: str, port: int) -> None:
    """Serve POST /v1/hooks/cms (CMS publish hook) and /healthz."""
    import uvicorn

    from content_variants.hook_api import create_hook_app
    from edge_functions.http_protocol import http_protocol

    settings = _publisher()
    uvicorn.run(create_hook_app(settings), host=host, port=port, access_log=False,
                log_config=None, loop="uvloop", http=http_protocol(settings))


@cli.command()
@click.option("--burst", is_flag=True, help="Drain the stream, then exit (backfills, tests).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port.")
@_one_line_errors
def worker(burst: bool, metrics_port: int | None) -> None:
    """Consume the event stream and write decisions (a member of the consumer group)."""
    from edgepick.worker_process import run_worker

    run_worker(_worker(), burst, metrics_port)


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Stop at the first bad line instead of skipping it.")
@click.option("--replay", is_flag=True,
              help="Also put the imported events on the stream (oldest first), so the worker "
                   "applies them to profiles and popularity.")
@_one_line_errors
def import_history(paths: tuple[Path, ...], strict: bool, replay: bool) -> None:
    """Import historical Segment messages (JSON Lines files or folders, gzip too) into the
    event log, each in its event day, deduplicated by messageId."""
    from edgepick.import_cli import import_with_progress

    summary = import_with_progress(_worker(), list(paths), strict, replay)
    if summary.imported == 0 and summary.bad_lines:
        sys.exit(1)


@cli.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1),
              help="Length of the window when --since is not given.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Start of the window (UTC, event time) [default: UNTIL minus DAYS].")
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="End of the window (UTC, event time, exclusive) [default: now].")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML report [default: DATA_DIR/reports/VERSION.html].")
@_one_line_errors
def train(days: int, since: Any, until: Any, report_path: Path | None) -> None:
    """Train a LightGBM ranker on the event log, evaluate it, register it as the shadow model."""
    from edgepick.training_cli import train_and_report

    settings = _worker()
    train_and_report(settings, _redis(settings), days, until, report_path, since=since)


@cli.command()
@click.argument("version", required=False)
@click.option("--force", "reason", metavar="REASON", default=None,
              help="Promote even if it does not win; the reason is recorded.")
@_one_line_errors
def promote(version: str | None, reason: str | None) -> None:
    """Make VERSION (default: the shadow model) the production model, if it wins."""
    from decision_worker.learning.registry import registry_from_url

    promoted = registry_from_url(_worker().origin).promote(version, reason)
    click.echo(f"production is now {promoted}; workers pick it up within a few seconds")


@cli.command()
@_one_line_errors
def rollback() -> None:
    """Return production to the version before the current one."""
    from decision_worker.learning.registry import registry_from_url

    previous = registry_from_url(_worker().origin).rollback()
    click.echo(f"production is now {previous or 'the baseline ranker'}")


@cli.command()
@click.argument("users", nargs=-1, required=True)
@_one_line_errors
def forget(users: tuple[str, ...]) -> None:
    """Delete everything kept about USERS and every id linked to them, suppress their future
    events, and keep training from learning from their logged events."""
    from edgepick.privacy_cli import forget_users

    report = forget_users(_worker(), list(users))
    click.echo(f"forgot {report.users} user(s) ({report.ids} id(s) with linked ones); "
               f"{report.keys_deleted} decision key(s) deleted; future events suppressed")


@cli.command("recover-stream")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), required=True,
              help="Re-stream logged events received since this time (UTC).")
@_one_line_errors
def recover_stream(since: Any) -> None:
    """Put logged events that are not in the stream back on it (after an events API process
    died with a backlog); events already streamed are skipped."""
    from edgepick.privacy_cli import recover

    count = recover(_worker(), since)
    click.echo(f"re-streamed {count} logged event(s) that were not in the stream")


@cli.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65534))
@click.option("--content", "content_dir", type=click.Path(path_type=Path), default=None,
              help="Content folder (default: the example catalog shipped with edgepick).")
@click.option("--api-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the events API [default: PORT+1].")
@click.option("--users", default=300, show_default=True, type=click.IntRange(1, 100_000),
              help="Size of the synthetic population.")
@click.option("--once", is_flag=True, help="Print the summary and exit instead of serving.")
@_one_line_errors
def demo(port: int, content_dir: Path | None, api_port: int | None, users: int,
         once: bool) -> None:
    """The whole product locally: publish, replay a synthetic population's events through
    the events API and the worker, and serve the decisions on PORT."""
    from content_variants.settings import PublisherSettings
    from decision_worker.settings import WorkerSettings
    from edge_functions.settings import ServingSettings
    from edgepick.demo import DemoSettings, run_demo

    serving = _settings(ServingSettings, serve_origin=True)
    # One embedded Redis for the three parts; variants served by the demo itself unless a
    # CDN is configured.
    cdn = os.environ.get("EDGEPICK_CDN_BASE") or f"http://127.0.0.1:{port}"
    parts = DemoSettings(serving,
                         WorkerSettings.from_env(None, redis_url=serving.redis_url),
                         PublisherSettings.from_env(None, redis_url=serving.redis_url,
                                                    cdn_base=cdn))
    run_demo(parts, port, api_port or port + 1, content_dir, once, users)


def main() -> None:
    cli(prog_name="edgepick")
