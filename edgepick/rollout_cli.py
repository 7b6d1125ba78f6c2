"""`edgepick rollout start|status|stop|controller`, and `edgepick promote`, which starts a
rollout unless `--now`. Parsing and printing only: the rules live in
decision_worker/ranking/experiment.py and decision_worker/learning/experiments/."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import click

from edge_functions.errors import ConfigError
from edgepick.cli_support import one_line_errors, redis_client, worker_settings


def parse_steps(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part.strip().rstrip("%")) for part in text.split(","))
    except ValueError as e:
        raise ConfigError(f"--steps {text!r}: give per cents separated by commas, e.g. "
                          "1,5,20,50,100") from e


def parse_guardrail(text: str) -> tuple[str, float]:
    """METRIC:MAX_DROP, the drop as a share (0.05) or a per cent (5%)."""
    metric, _, drop = text.partition(":")
    try:
        value = float(drop.rstrip("%")) / (100 if drop.endswith("%") else 1)
    except ValueError as e:
        raise ConfigError(f"--guardrail {text!r}: use METRIC:MAX_DROP, e.g. "
                          "click_through:5%") from e
    return metric.strip(), value


def start_rollout(model: str | None, steps: str, min_exposures: int,
                  guardrails: tuple[str, ...], placements: tuple[str, ...],
                  shadow_seconds: float, experiment_id: str | None,
                  force_reason: str | None) -> str:
    """Check the model may replace production, then store the rollout (in shadow)."""
    from decision_worker.learning.experiments import rollout_store
    from decision_worker.learning.registry import registry_from_url
    from decision_worker.ranking.experiment import Experiment, GuardrailRule

    settings = worker_settings()
    registry = registry_from_url(settings.origin)
    version = registry.promotable(model, force_reason)
    now = time.time()
    rules = tuple(GuardrailRule(*parse_guardrail(g)) for g in guardrails)
    experiment = Experiment(
        experiment_id or f"rollout-{version}", version, registry.pointers().get("production"),
        placements=placements, steps=parse_steps(steps), min_exposures=min_exposures,
        shadow_seconds=shadow_seconds, started_at=now, step_started_at=now,
        notes={"forced": force_reason} if force_reason else {})
    if rules:
        experiment = experiment.with_(guardrails=rules)
    why = f"forced past the offline gate: {force_reason}" if force_reason else \
        registry.won_on(version)
    rollout_store.start(redis_client(settings), experiment, f"started: {why}")
    return (f"rollout {experiment.id} started: {version} in shadow for {shadow_seconds:g} s, "
            f"then {','.join(f'{s:g}' for s in experiment.steps)} %")


STEPS_HELP = "The treatment's share at each step, in per cent."


@click.group()
def rollout() -> None:
    """Roll a model out safely: shadow, then ramps with guardrails and automatic rollback."""


@rollout.command("start")
@click.argument("model")
@click.option("--steps", default="1,5,20,50,100", show_default=True, help=STEPS_HELP)
@click.option("--min-exposures", default=40_000, show_default=True, type=int,
              help="Exposures each arm needs in a step before it may advance.")
@click.option("--guardrail", "guardrails", multiple=True, metavar="METRIC:MAX_DROP",
              help="Roll back when METRIC (click_through or conversion) drops more than "
                   "MAX_DROP, with significance [default: click_through:2%].")
@click.option("--placement", "placements", multiple=True,
              help="Limit the rollout to this placement (repeatable) [default: all].")
@click.option("--shadow-seconds", default=3600.0, show_default=True, type=float,
              help="How long the model runs in shadow before the first step.")
@click.option("--id", "experiment_id", default=None, help="[default: rollout-MODEL]")
@click.option("--force", "force_reason", metavar="REASON", default=None,
              help="Start even if the model did not win offline; the reason is recorded.")
@one_line_errors
def start(model: str, steps: str, min_exposures: int, guardrails: tuple[str, ...],
          placements: tuple[str, ...], shadow_seconds: float, experiment_id: str | None,
          force_reason: str | None) -> None:
    """Start rolling MODEL out (it must have beaten production offline, or --force)."""
    click.echo(start_rollout(model, steps, min_exposures, guardrails, placements,
                             shadow_seconds, experiment_id, force_reason))


@rollout.command("status")
@click.argument("experiment_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@one_line_errors
def status(experiment_id: str | None, as_json: bool) -> None:
    """Where every rollout (or EXPERIMENT_ID) stands: step; per arm, over all placements and
    per placement, click-through and conversion rate with their lifts (95 %); SRM,
    guardrails, history; and the lift of personalization itself against the holdout."""
    from edgepick.rollout_report import (
        personalization_document,
        personalization_lines,
        rollout_documents,
        rollout_lines,
    )

    redis = redis_client(worker_settings())
    docs = rollout_documents(redis, experiment_id)
    if as_json:
        click.echo(json.dumps(docs, indent=1))
        return
    if experiment_id is None:
        for line in personalization_lines(personalization_document(redis)):
            click.echo(line)
    for line in rollout_lines(docs):
        click.echo(line)


@rollout.command("stop")
@click.argument("experiment_id")
@click.option("--reason", default="stopped by an operator", show_default=True)
@one_line_errors
def stop(experiment_id: str, reason: str) -> None:
    """Stop a rollout: everyone gets production again; the decision is recorded."""
    from decision_worker.learning.experiments import rollout_store
    from decision_worker.ranking.experiment import ExperimentError

    redis = redis_client(worker_settings())
    experiment = rollout_store.load_experiment(redis, experiment_id)
    if not experiment.active:
        raise ExperimentError(f"rollout {experiment_id} is {experiment.status} already")
    if not rollout_store.transition(redis, experiment, experiment.with_(status="stopped"),
                                    "stop", reason):
        raise ExperimentError(f"rollout {experiment_id} changed meanwhile: try again")
    click.echo(f"rollout {experiment_id} stopped; production is unchanged")


@rollout.command("controller")
@click.option("--every", "every_s", default=5.0, show_default=True, type=float,
              help="Seconds between looks.")
@one_line_errors
def controller(every_s: float) -> None:
    """Run the rollout controller (one acts at a time; others wait to take over)."""
    from decision_worker.learning.experiments.controller import RolloutController, run
    from decision_worker.learning.registry import registry_from_url

    settings = worker_settings()
    stopping: list[Any] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.append(True))
    run(RolloutController(redis_client(settings), registry_from_url(settings.origin)),
        every_s, lambda: bool(stopping))
