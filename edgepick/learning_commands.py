"""The `edgepick` commands of the learning loop: import history, train, promote, roll
back, and explain what was decided."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from edgepick.cli_support import one_line_errors, redis_client, worker_settings


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Stop at the first bad line instead of skipping it.")
@click.option("--replay", is_flag=True,
              help="Also put the imported events on the stream (oldest first), so the worker "
                   "applies them to profiles and popularity.")
@one_line_errors
def import_history(paths: tuple[Path, ...], strict: bool, replay: bool) -> None:
    """Import historical Segment messages (JSON Lines files or folders, gzip too) into the
    event log, each in its event day, deduplicated by messageId."""
    from edgepick.import_cli import import_with_progress

    summary = import_with_progress(worker_settings(), list(paths), strict, replay)
    if summary.imported == 0 and summary.bad_lines:
        sys.exit(1)


@click.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1),
              help="Length of the window when --since is not given.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Start of the window (UTC, event time) [default: UNTIL minus DAYS].")
@click.option("--until", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="End of the window (UTC, event time, exclusive) [default: now].")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML report [default: DATA_DIR/reports/VERSION.html].")
@click.option("--features", "features_path", type=click.Path(path_type=Path), default=None,
              envvar="EDGEPICK_FEATURES", show_envvar=True,
              help="Feature configuration (YAML): the traits and context signals the model "
                   "may read [default: no trait, every context signal].")
@one_line_errors
def train(days: int, since: Any, until: Any, report_path: Path | None,
          features_path: Path | None) -> None:
    """Train a LightGBM ranker on the event log, evaluate it, register it as the shadow model."""
    # Before numpy loads: the replay's batched products would start OpenBLAS's own threads,
    # which then spin against LightGBM's (the train step took 27 s instead of 0.6 s).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from decision_worker.ingest.events import event_rules
    from decision_worker.learning import heap
    from decision_worker.learning.feature_config import DEFAULT_FEATURES, load_feature_config
    from edgepick.training_cli import train_and_report

    settings = worker_settings()
    features = DEFAULT_FEATURES if features_path is None else load_feature_config(
        features_path, event_rules(settings).allowed_traits)
    heap.exit_soon()  # freeing the log's millions of objects would only delay the exit
    train_and_report(settings, redis_client(settings), days, until, report_path, since=since,
                     features=features)
    heap.exit_now()


@click.command()
@click.argument("version", required=False)
@click.option("--force", "reason", metavar="REASON", default=None,
              help="Promote even if it does not win; the reason is recorded.")
@click.option("--now", is_flag=True,
              help="Switch every user at once instead of rolling out (emergencies; "
                   "recorded in the registry's log).")
@one_line_errors
def promote(version: str | None, reason: str | None, now: bool) -> None:
    """Roll VERSION (default: the shadow model) out if it wins: shadow, then ramps with
    guardrails (see `edgepick rollout`); with --now, make it production at once."""
    from decision_worker.learning.registry import registry_from_url
    from edgepick.rollout_cli import start_rollout

    if not now:
        click.echo(start_rollout(version, "1,5,20,50,100", 40_000, (), (), 3600.0, None,
                                 reason))
        return
    why = f"--now: {reason}" if reason else None
    promoted = registry_from_url(worker_settings().origin).promote(version, why)
    click.echo(f"production is now {promoted}; workers pick it up within a few seconds")


@click.command()
@one_line_errors
def rollback() -> None:
    """Return production to the version before the current one."""
    from decision_worker.learning.registry import registry_from_url

    previous = registry_from_url(worker_settings().origin).rollback()
    click.echo(f"production is now {previous or 'the baseline ranker'}")


@click.command()
@click.argument("user")
@click.argument("placement", required=False)
@one_line_errors
def explain(user: str, placement: str | None) -> None:
    """Show what was decided for USER (every placement, or PLACEMENT): the ranked variants,
    the model, the arm and when, as the edge reads them, and why: the first variant's
    exploration probability and the features that moved its score most."""
    from edge_functions.identifiers import check_id, check_user_id
    from edgepick.explain_cli import explain as read
    from edgepick.explain_cli import explanation_lines

    check_user_id(user)
    if placement is not None:
        check_id("placement", placement)
    for line in explanation_lines(read(worker_settings(), user, placement)):
        click.echo(line)


@click.command()
@click.argument("version", required=False)
@one_line_errors
def flags(version: str | None) -> None:
    """Variants flagged for review: far fewer clicks than VERSION's model (default: the
    production model, else the shadow one) expected for the users they were shown to, on
    its evaluation window."""
    from decision_worker.errors import RegistryError
    from decision_worker.learning.content_flags import ContentFlag
    from decision_worker.learning.registry import registry_from_url

    registry = registry_from_url(worker_settings().origin)
    pointers = registry.pointers()
    version = version or pointers.get("production") or pointers.get("shadow")
    if not version:
        raise RegistryError("no model yet: train one first (edgepick train)")
    found = registry.load(version)[1].get("content_flags", [])
    click.echo(f"{version}: {len(found)} variant(s) flagged for review")
    for flag in found:
        click.echo(f"  {ContentFlag(**flag).describe()}")


def _rollout() -> click.Group:
    from edgepick.audit_cli import history
    from edgepick.rollout_cli import rollout
    from edgepick.shadow_cli import shadow

    rollout.add_command(shadow)
    rollout.add_command(history)
    return rollout


COMMANDS = (import_history, train, promote, rollback, explain, flags, _rollout())
