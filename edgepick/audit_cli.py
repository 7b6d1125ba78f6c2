"""`edgepick rollout history [ID]`: every rollout transition with its reason, from the audit
log's durable copy on the origin (decision_worker/learning/experiments/audit_archive.py),
which outlives Redis' capped stream."""

from __future__ import annotations

import click

from edgepick.cli_support import one_line_errors, worker_settings


@click.command("history")
@click.argument("experiment_id", required=False)
@one_line_errors
def history(experiment_id: str | None) -> None:
    """Every transition of every rollout (or EXPERIMENT_ID) the controller has copied to the
    origin: when, what, the step and share after it, and why."""
    from decision_worker.learning.experiments.audit_archive import archived_history
    from object_store import from_url

    settings = worker_settings()
    entries = archived_history(from_url(settings.origin), experiment_id)
    if not entries:
        scope = f"rollout {experiment_id}" if experiment_id else "any rollout"
        click.echo(f"no archived transitions of {scope} on {settings.origin} (the rollout "
                   "controller copies them at each look)")
    for e in entries:
        click.echo(f"{e.at_iso}  {e.experiment}  {e.action:<11} {e.status:<11} step "
                   f"{e.step_index + 1} ({e.share:g} %)  {e.reason}")
