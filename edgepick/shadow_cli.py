"""`edgepick rollout shadow ID`: what a rollout's model chose while in shadow, against what
users then engaged with (decision_worker/learning/experiments/shadow_check.py)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from edgepick.cli_support import one_line_errors, redis_client, worker_settings

if TYPE_CHECKING:  # the CLI imports learning code only when a command runs
    from decision_worker.learning.experiments.shadow_check import ShadowReport


@click.command("shadow")
@click.argument("experiment_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def shadow(experiment_id: str, as_json: bool) -> None:
    """Compare what EXPERIMENT_ID's model would have served in shadow with what production
    served, and with what users then clicked (read from the origin's logs)."""
    from decision_worker.ingest.event_log import event_log_from_url
    from decision_worker.ingest.events import event_rules
    from decision_worker.learning.experiments import rollout_store
    from decision_worker.learning.experiments.shadow_check import read_shadow_report

    settings = worker_settings()
    experiment = rollout_store.load_experiment(redis_client(settings), experiment_id)
    report = read_shadow_report(event_log_from_url(settings.origin), experiment,
                                settings.key_secret_bytes, rules=event_rules(settings))
    if as_json:
        click.echo(json.dumps(asdict(report), indent=1))
        return
    for line in shadow_lines(report):
        click.echo(line)


def shadow_lines(report: ShadowReport) -> list[str]:
    def day(at: float) -> str:
        return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M")

    head = (f"rollout {report.experiment}: {report.model} in shadow, decisions from "
            f"{day(report.since)} to {day(report.until)} UTC")
    if not report.figures:
        return [head, "  no shadowed decisions in the decision log yet (the worker logs "
                      "them every second while the rollout is in shadow)"]
    lines = [head]
    for name, f in report.figures.items():
        lines += [
            f"  {name}: {f.decisions:,} decisions, {f.users:,} users",
            f"    first choices agree      {_share(f.agreement.value)} "
            f"[{_share(f.agreement.low)}, {_share(f.agreement.high)}]",
            f"    production click-through {_share(f.production_ctr.value)} "
            f"[{_share(f.production_ctr.low)}, {_share(f.production_ctr.high)}]",
            f"    shadow, off-policy       {_share(f.shadow_snips.value)} "
            f"[{_share(f.shadow_snips.low)}, {_share(f.shadow_snips.high)}] (SNIPS; "
            f"evidence from {f.support:,} decisions that served its pick)",
            f"    its pick clicked anyway  {_share(f.shadow_pick_clicked.value)} "
            f"[{_share(f.shadow_pick_clicked.low)}, {_share(f.shadow_pick_clicked.high)}] "
            "(a floor: it was not served first)"]
    return lines


def _share(value: float) -> str:
    return "   n/a" if value != value else f"{100 * value:5.1f}%"
