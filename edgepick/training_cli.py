"""How `edgepick train` shows its work: a status line per step, the evaluation table, the
HTML report's path."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from redis import Redis
from rich.console import Console
from rich.table import Table

from decision_worker.ingest.event_log import event_log_from_url
from decision_worker.ingest.events import event_rules
from decision_worker.learning.evaluation import METRICS
from decision_worker.learning.feature_config import DEFAULT_FEATURES, FeatureConfig
from decision_worker.learning.history_buckets import describe
from decision_worker.learning.intervals import Interval
from decision_worker.learning.off_policy import OffPolicyReport
from decision_worker.learning.pipeline import TrainingReport, run_training
from decision_worker.learning.promotion_basis import MIN_LOGGED_DECISIONS, MIN_LOGGED_USERS
from decision_worker.learning.registry import registry_from_url
from decision_worker.learning.report import write_html
from decision_worker.ranking.candidates import Catalog
from decision_worker.settings import WorkerSettings
from edge_functions.keys import MANIFEST_KEY


def train_and_report(settings: WorkerSettings, redis: Redis, days: int, until: dt.datetime | None,
                     report_path: Path | None, console: Console | None = None,
                     since: dt.datetime | None = None,
                     features: FeatureConfig = DEFAULT_FEATURES) -> str:
    console = console or Console(soft_wrap=True)
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    registry = registry_from_url(settings.origin)
    until, since = _utc(until), _utc(since)
    # Steps printed, not a spinner: a spinner is a thread, and the replay forks its feature
    # workers only in a process without other threads (feature_workers.py).
    report = run_training(event_log_from_url(settings.origin), catalog, registry,
                          settings.lateness_s, days, until, since,
                          on_step=lambda step: console.print(f"training: {step}…",
                                                             highlight=False),
                          rules=event_rules(settings), secret=settings.key_secret_bytes,
                          rank_limit=settings.rank_limit, features=features)
    table = Table(title=f"Candidate {report.version}: evaluation on the latest "
                        f"{report.groups['test']:,} slates and session starts of the window")
    table.add_column("metric")
    for evaluation in report.evaluations:
        table.add_column(evaluation.name, justify="right")
    for metric in METRICS:
        table.add_row(metric, *(_fmt(e.metrics[metric]) for e in report.evaluations))
    console.print(table)
    if report.offline_comparison is not None:
        console.print(_difference(report.evaluated_on, report.offline_comparison, "groups"),
                      highlight=False)
    trending = report.evaluations[2].name if len(report.evaluations) > 2 else ""
    for line in describe(report.by_history, report.evaluated_on, trending.split(" (")[0]):
        console.print(f"  by history: {line}", highlight=False)
    for line in off_policy_lines(report.off_policy):
        console.print(line, highlight=False)
    for line in promotion_lines(report):
        console.print(line, highlight=False)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    console.print(f"{report.messages:,} messages ({report.invalid} invalid, "
                  f"{report.corrupt_lines} unreadable lines); groups: "
                  f"{report.groups['train']:,} train, {report.groups['valid']:,} validation; "
                  f"{report.rounds} trees; {timing}", highlight=False)
    for reason, count in report.skipped.items():
        console.print(f"skipped {count:,} slates: {reason}", highlight=False)
    if report.clickless.share < 1.0:
        console.print(f"evaluated a sample of the test window's {report.clickless.found:,} "
                      f"slates without a click: {report.clickless.share:.1%}, each counted "
                      f"{report.clickless.weight:.1f} times in AUC, coverage, diversity and "
                      "content flags", highlight=False)
    console.print(f"{len(report.columns)} columns read ({features.source}); not read: "
                  + (", ".join(f"{c} ({why})" for c, why in report.dropped.items()) or "none"),
                  highlight=False)
    for flag in report.content_flags:
        console.print(f"flagged for review: {flag.describe()}", highlight=False)
    path = report_path or settings.data_dir / "reports" / f"{report.version}.html"
    write_html(report, path)
    console.print(f"report: {path}\nregistered {report.version} as the shadow model; "
                  f"`edgepick promote` serves it if it beats production", highlight=False)
    return report.version


def off_policy_lines(report: OffPolicyReport | None) -> list[str]:
    """The first slot's click-through of each policy, estimated from the decision log."""
    if report is None:
        return ["off-policy: no logged propensities (the decision log holds no decisions in "
                "the window)"]
    lines = [f"off-policy, first slot: {report.replayed:,} of {report.logged:,} logged "
             f"decisions replayed (session starts of the evaluation window); logged policy's "
             f"click-through {report.logged_ctr.value:.4f} "
             f"[{report.logged_ctr.low:.4f}, {report.logged_ctr.high:.4f}]"]
    for e in report.estimates:
        lines.append(f"  {e.policy}: IPS {_interval(e.ips)}, SNIPS {_interval(e.snips)}, "
                     f"DR {_interval(e.dr)}; could have served what was logged in "
                     f"{e.support:.0%} (95 % intervals, users resampled)")
    return lines


def promotion_lines(report: TrainingReport) -> list[str]:
    """What promotion will decide on, when the decision log had a say in it."""
    if report.comparison is not None and report.primary != report.evaluated_on:
        return ["promotion decides on the off-policy estimate, fair to both where production "
                "made the decisions: " + _difference(f"{report.primary} (doubly robust)",
                                                     report.comparison, "decisions")]
    off, offline = report.off_policy, report.evaluated_on
    if off is None:
        return []
    if off.comparison is None:
        return [f"promotion decides on {offline}: no logged decision of the evaluation window "
                "was found in the replay"]
    return [f"promotion decides on {offline}: the off-policy comparison needs "
            f"{MIN_LOGGED_DECISIONS} logged decisions of {MIN_LOGGED_USERS} users or more, and "
            f"{off.comparison.groups:,} of {off.comparison.users:,} were replayed"]


def _difference(metric: str, c: Interval, unit: str) -> str:
    return (f"candidate − production on {metric}: {c.describe()} (95 % interval, "
            f"{c.groups:,} {unit} of {c.users:,} users resampled)")


def _interval(interval: Interval) -> str:
    return f"{_fmt(interval.value)} [{_fmt(interval.low)}, {_fmt(interval.high)}]"


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None \
        else moment
