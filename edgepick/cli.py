"""`edgepick …`: parse arguments, build clients once, call the packages, print results.

Every expected failure (bad input, unreachable Redis, a refused publish) ends with one line
on stderr and a non-zero exit; nothing here holds logic of its own.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from edgepick.cli_support import (
    one_line_errors,
    package_settings,
    publisher_settings,
    redis_client,
    worker_settings,
)
from edgepick.learning_commands import COMMANDS


@click.group()
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def cli(log_level: str) -> None:
    """edgepick: edge-first personalization. Configuration comes from EDGEPICK_* variables."""
    from edge_functions.logs import configure

    configure(log_level.upper())


@cli.command()
@click.argument("content_dir", type=click.Path(path_type=Path))
@one_line_errors
def publish(content_dir: Path) -> None:
    """Render CONTENT_DIR, upload new variants, pre-warm them, then make them eligible."""
    from content_variants.limits import PublishLimits
    from content_variants.origin import origin_from_url
    from content_variants.prewarm import Prewarmer
    from edgepick.reporting import publish_with_progress

    settings = publisher_settings()
    prewarmer = Prewarmer(settings.cdn_base, settings.prewarm_timeout_s)
    try:
        report = publish_with_progress(content_dir, redis_client(settings),
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
@one_line_errors
def unpublish(placement: str, variant: str, replace_default: str | None) -> None:
    """Remove VARIANT of PLACEMENT from the manifest (its object stays: URLs are immutable)."""
    from content_variants.manifest_writer import unpublish as unpublish_variant
    from content_variants.origin import origin_from_url
    from edge_functions.identifiers import check_id

    check_id("placement", placement)
    check_id("variant", variant)
    if replace_default is not None:
        check_id("variant", replace_default)
    settings = publisher_settings()
    doc = unpublish_variant(redis_client(settings), placement, variant, replace_default,
                            origin_from_url(settings.origin))
    default = doc["placements"][placement]["default"]
    click.echo(f"unpublished {placement}/{variant}; default is {default}; "
               f"manifest rev {doc['rev']}")


@cli.command()
@click.argument("user")
@click.argument("placement")
@click.argument("variants", nargs=-1, required=True)
@click.option("--ttl", type=int, default=None, help="Seconds (default EDGEPICK_DECISION_TTL_S).")
@one_line_errors
def pin(user: str, placement: str, variants: tuple[str, ...], ttl: int | None) -> None:
    """Decide by hand: USER sees VARIANTS (first that is still published) in PLACEMENT."""
    from decision_worker.online.pinning import pin as pin_decision

    settings = worker_settings()
    ttl_s = settings.decision_ttl_s if ttl is None else ttl
    pin_decision(redis_client(settings), settings.key_secret_bytes, user, placement, list(variants),
                 ttl_s)
    click.echo(f"pinned {placement} → {', '.join(variants)} for that user (ttl {ttl_s}s)")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@one_line_errors
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve GET /p/{placement}, /p?placements=…, /healthz and /metrics."""
    import uvicorn

    from edge_functions.http_protocol import http_protocol
    from edge_functions.settings import ServingSettings

    settings = package_settings(ServingSettings)
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
@one_line_errors
def api(host: str, port: int) -> None:
    """Serve POST /v1/events (Segment-spec), the operator routes and dashboard, /healthz and
    /metrics."""
    import uvicorn

    from decision_worker.api import create_api
    from edge_functions.http_protocol import http_protocol

    settings = worker_settings()
    click.echo(f"operator dashboard: http://{host}:{port}/dashboard"
               + (" (sign in with EDGEPICK_ADMIN_TOKEN)" if settings.admin_token else
                  " (disabled until EDGEPICK_ADMIN_TOKEN is set)"), err=True)
    uvicorn.run(create_api(settings), host=host, port=port, access_log=False,
                log_config=None, loop="uvloop", http=http_protocol(settings))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8002, show_default=True, type=click.IntRange(1, 65535))
@one_line_errors
def hooks(host: str, port: int) -> None:
    """Serve POST /v1/hooks/cms (CMS publish hook) and /healthz."""
    import uvicorn

    from content_variants.hook_api import create_hook_app
    from edge_functions.http_protocol import http_protocol

    settings = publisher_settings()
    uvicorn.run(create_hook_app(settings), host=host, port=port, access_log=False,
                log_config=None, loop="uvloop", http=http_protocol(settings))


@cli.command()
@click.option("--burst", is_flag=True, help="Drain the stream, then exit (backfills, tests).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port.")
@one_line_errors
def worker(burst: bool, metrics_port: int | None) -> None:
    """Consume the event stream and write decisions (a member of the consumer group)."""
    from edgepick.worker_process import run_worker

    run_worker(worker_settings(), burst, metrics_port)


@cli.command()
@click.argument("users", nargs=-1, required=True)
@one_line_errors
def forget(users: tuple[str, ...]) -> None:
    """Delete everything kept about USERS and every id linked to them, suppress their future
    events, and keep training from learning from their logged events."""
    from edgepick.privacy_cli import forget_users

    report = forget_users(worker_settings(), list(users))
    click.echo(f"forgot {report.users} user(s) ({report.ids} id(s) with linked ones); "
               f"{report.keys_deleted} decision key(s) and why-record(s) deleted; future "
               "events suppressed")


@cli.command("recover-stream")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), required=True,
              help="Re-stream logged events received since this time (UTC).")
@one_line_errors
def recover_stream(since: Any) -> None:
    """Put logged events that are not in the stream back on it (after an events API process
    died with a backlog); events already streamed are skipped."""
    from edgepick.privacy_cli import recover

    count = recover(worker_settings(), since)
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
@click.option("--rollouts/--no-rollouts", default=True, show_default=True,
              help="Roll a better model out and a worse one back, in accelerated time.")
@one_line_errors
def demo(port: int, content_dir: Path | None, api_port: int | None, users: int,
         once: bool, rollouts: bool) -> None:
    """The whole product locally: publish, replay a synthetic population's events through
    the events API and the worker, and serve the decisions on PORT."""
    from content_variants.settings import PublisherSettings
    from decision_worker.settings import WorkerSettings
    from edge_functions.settings import ServingSettings
    from edgepick.demo import DemoSettings, run_demo

    serving = package_settings(ServingSettings, serve_origin=True)
    # One embedded Redis for the three parts; variants served by the demo itself unless a
    # CDN is configured.
    cdn = os.environ.get("EDGEPICK_CDN_BASE") or f"http://127.0.0.1:{port}"
    parts = DemoSettings(serving,
                         WorkerSettings.from_env(None, redis_url=serving.redis_url),
                         PublisherSettings.from_env(None, redis_url=serving.redis_url,
                                                    cdn_base=cdn))
    run_demo(parts, port, api_port or port + 1, content_dir, once, users, rollouts)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where a process
    # that does not stop is stuck (the demo's Ctrl-C test asks for it when one hangs).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    cli(prog_name="edgepick")
