"""`edgepick train`: collect → features → train → evaluate → register, on a window of time.

The window is [since, until) of *event* time (default: the `days` days before now), read
from the log's event-day partitions, so imported history trains like live traffic.
Its slates are split by time: the first 70 % train, the next 10 % stop training early, the
last 20 % evaluate the candidate, the production model (the baseline ranker until a model
is promoted) and plain popularity, side by side. When the decision log holds decisions of
the evaluation window, the candidate's and production's click-through of the first slot is
also estimated off-policy from them (off_policy.py); with at least `MIN_LOGGED_DECISIONS`
of them, promotion decides on that estimate's paired difference (promotion_basis.py). The
feature configuration
(feature_config.py) says which traits and context signals the candidate may read; what it
reads is fitted on the training part (feature_fit.py). The candidate is registered with its
card (feature spec, parameters, window, metrics) and becomes the shadow model;
`edgepick promote` decides whether it serves.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from decision_worker.errors import ModelError
from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import DEFAULT_RULES, Event, EventRules
from decision_worker.learning import clickless_sample, heap
from decision_worker.learning.clickless_sample import ClicklessSample
from decision_worker.learning.cold_start import choose_below_history
from decision_worker.learning.content_flags import ContentFlag, content_flags
from decision_worker.learning.evaluation import (
    SESSION_METRICS,
    Evaluation,
    evaluate,
    popularity_scorer,
    primary_metric,
    trending_half_life,
    trending_scorer,
)
from decision_worker.learning.examples import Examples, build_examples
from decision_worker.learning.feature_config import DEFAULT_FEATURES, FeatureConfig
from decision_worker.learning.feature_fit import with_trait_columns
from decision_worker.learning.feature_workers import available_workers
from decision_worker.learning.history_buckets import by_history
from decision_worker.learning.intervals import Interval, paired_difference
from decision_worker.learning.off_policy import OffPolicyReport, off_policy_report
from decision_worker.learning.promotion_basis import OFF_POLICY_PRIMARY, promotion_basis
from decision_worker.learning.registry import Registry
from decision_worker.learning.replay import parse_log
from decision_worker.learning.slates import decision_span, shown_slates
from decision_worker.learning.training import train
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.ranker import BaselineRanker, Ranker
from decision_worker.ranking.trending import HALF_LIVES_DAYS

TRAIN_SHARE, VALID_SHARE = 0.7, 0.1


@dataclass
class TrainingReport:
    version: str
    window: tuple[str, str]
    messages: int
    invalid: int
    corrupt_lines: int
    groups: dict[str, int]
    skipped: dict[str, int]
    evaluations: list[Evaluation]
    rounds: int
    seconds: dict[str, float] = field(default_factory=dict)
    production_version: str | None = None
    primary: str = "ndcg@1"  # what promotion decides on
    comparison: Interval | None = None  # candidate − production on `primary`
    evaluated_on: str = "ndcg@1"  # the offline evaluation's primary metric (by_history's)
    offline_comparison: Interval | None = None  # candidate − production on `evaluated_on`
    by_history: dict[str, dict[str, Any]] = field(default_factory=dict)  # history_buckets.py
    columns: tuple[str, ...] = ()  # what the candidate reads
    dropped: dict[str, str] = field(default_factory=dict)  # column → why it is not read
    # The first slot's click-through estimated off-policy from the decision log (None: the
    # log holds no decisions in the window, so no logged propensities)
    off_policy: OffPolicyReport | None = None
    # Variants far below what the candidate expected on the test window (content_flags.py)
    content_flags: list[ContentFlag] = field(default_factory=list)
    # The test window's slates without a click, and the share of them evaluated
    clickless: ClicklessSample = field(default_factory=ClicklessSample)


@heap.restores_collector
def run_training(log: EventLog, catalog: Catalog, registry: Registry, lateness_s: float,
                 days: int = 7, until: dt.datetime | None = None,
                 since: dt.datetime | None = None,
                 params: dict[str, Any] | None = None,
                 on_step: Callable[[str], None] = lambda step: None,
                 rules: EventRules = DEFAULT_RULES, secret: bytes = b"",
                 rank_limit: int = 500,
                 features: FeatureConfig = DEFAULT_FEATURES) -> TrainingReport:
    """`secret` (EDGEPICK_KEY_SECRET) recognises tombstoned ids; `rank_limit` is the worker's;
    `features`: the traits and context signals the model may read (checked against `rules`)."""
    since, until = _window(catalog, days, since, until)
    features.check_traits(rules.allowed_traits)
    steps = _Steps(on_step)

    steps.start("collect")
    messages, events, invalid = _read(log, since, until, rules, secret)
    steps.start("features")
    (train_set, valid_set, test_set), cuts, skipped = split_by_time(
        events, catalog, lateness_s, since, until, rank_limit)

    steps.start("train")
    trained = train(train_set, valid_set, params, features=features)
    model_text = trained.model_text()
    version = f"lgbm-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    half_life = trending_half_life(valid_set)
    candidate = LightGBMRanker(version, model_text, trained.spec, cold_start_half_life=half_life)
    choose_below_history(candidate, valid_set)

    steps.start("evaluate")
    production_version = registry.pointers().get("production")
    production = _production_ranker(registry, production_version)
    evaluations, primary, comparison = evaluate_side_by_side(candidate, production, half_life,
                                                             test_set, catalog)
    buckets = by_history(evaluations[:3], primary) if primary in SESSION_METRICS else {}
    flags = content_flags(candidate.score, with_trait_columns(test_set, candidate.traits))
    steps.start("off-policy")
    off_policy = _off_policy(log, events, catalog, (candidate, production), secret,
                             lateness_s, (since, until, cuts[1]))
    steps.start(None)
    decided_on, decision = promotion_basis(primary, comparison, off_policy)
    groups = {"train": train_set.groups, "valid": valid_set.groups, "test": test_set.groups}
    registry.register(version, model_text, {
        **trained.spec.card(), "feature_config": features.card(), "dropped": trained.dropped,
        "params": trained.params, "rounds": trained.rounds,
        "window": {"since": since.isoformat(), "until": until.isoformat(),
                   "train_until": _iso(cuts[0]), "valid_until": _iso(cuts[1])},
        "examples": _examples_card(groups, skipped, test_set.clickless),
        "production_version": production_version,
        **_evaluation_card(evaluations, (primary, comparison), (decided_on, decision),
                           off_policy, half_life),
        "cold_start": candidate.cold_start_card(half_life),
        "by_history": buckets,
        "off_policy": None if off_policy is None else asdict(off_policy),
        "content_flags": [asdict(flag) for flag in flags],
        "trained_at": dt.datetime.now(dt.UTC).isoformat()})
    return TrainingReport(version, (since.isoformat(), until.isoformat()), messages,
                          invalid, log.corrupt_lines, groups, skipped, evaluations,
                          trained.rounds, steps.seconds, production_version, decided_on,
                          decision, primary, comparison, buckets, trained.spec.columns,
                          trained.dropped, off_policy, flags, test_set.clickless)


def _read(log: EventLog, since: dt.datetime, until: dt.datetime, rules: EventRules,
          secret: bytes) -> tuple[int, list[Event], int]:
    """How many messages the window holds, its events in arrival order, and how many lines
    were not valid events: read with the collector paused, then set aside (heap.py)."""
    with heap.long_lived():  # no cycles among them; set aside until training returns
        messages = collect(log, since, until)
        events, invalid = parse_log(messages, rules, log.read_tombstones(), secret)
    heap.keep(messages, events)  # never freed by a process that exits next
    return len(messages), events, invalid


def _examples_card(groups: dict[str, int], skipped: dict[str, int],
                   clickless: ClicklessSample) -> dict[str, Any]:
    """What the card says of the examples: groups per set, skips, and the test window's
    slates without a click with the share of them evaluated (clickless_sample.py)."""
    return {**{f"{k}_groups": v for k, v in groups.items()}, "skipped": skipped,
            "clickless_test_slates": clickless.found,
            "clickless_share_evaluated": clickless.share}


def _off_policy(log: EventLog, events: list[Event], catalog: Catalog,
                rankers: tuple[Ranker, Ranker], secret: bytes, lateness_s: float,
                window: tuple[dt.datetime, dt.datetime, float]) -> OffPolicyReport | None:
    """Candidate and production estimated off-policy on the logged decisions of the
    evaluation window; None when the decision log holds none (no logged propensities)."""
    since, until, evaluated_from = window
    decisions = DecisionLog(log.store).read_days(since.date(), until.date(),
                                                 log.read_tombstones())
    if not decisions:
        return None
    candidate, production = rankers
    return off_policy_report(events, catalog, decisions,
                             {"candidate": candidate,
                              f"production ({production.version})": production},
                             secret, lateness_s, evaluated_from, until.timestamp())


def evaluate_side_by_side(candidate: Ranker, production: Ranker, half_life: int,
                          test_set: Examples, catalog: Catalog
                          ) -> tuple[list[Evaluation], str, Interval]:
    """Candidate, production, trending and popularity on the same test examples (each
    model with the trait columns it reads), the primary metric and the paired interval of
    candidate − production on it. The models score every kept candidate (millions of
    rows): with every core training has."""
    for ranker in (candidate, production):
        if isinstance(ranker, LightGBMRanker):
            ranker.threads = available_workers(forked=False)
    evaluations = [
        evaluate("candidate", candidate.score, with_trait_columns(test_set, candidate.traits),
                 catalog),
        evaluate(f"production ({production.version})", production.score,
                 with_trait_columns(test_set, production.traits), catalog),
        evaluate(f"trending ({half_life} d)", trending_scorer(half_life), test_set, catalog),
        evaluate("popularity", popularity_scorer, test_set, catalog)]
    primary = primary_metric(evaluations[0])
    comparison = paired_difference(*evaluations[0].outcomes(primary),
                                   evaluations[1].outcomes(primary)[1])
    return evaluations, primary, comparison


def _evaluation_card(evaluations: list[Evaluation], offline: tuple[str, Interval],
                     decision: tuple[str, Interval], off_policy: OffPolicyReport | None,
                     half_life: int) -> dict[str, Any]:
    """What the card says of the evaluation: every model's metrics (with the off-policy
    estimate when promotion decides on it), the offline primary metric and its interval,
    what promotion decides on and its interval, and the half-lives."""
    metrics = dict(zip(("candidate", "production", "trending", "popularity"),
                       ({**e.metrics} for e in evaluations), strict=True))
    if decision[0] == OFF_POLICY_PRIMARY and off_policy is not None:
        for estimate in off_policy.estimates:  # named "candidate", "production (version)"
            metrics[estimate.policy.split(" ")[0]][OFF_POLICY_PRIMARY] = estimate.dr.value
    return {
        "metrics": metrics, "evaluated_on": offline[0],
        "offline_comparison": asdict(offline[1]),
        "primary": decision[0], "comparison": asdict(decision[1]),
        "trending_half_life_days": half_life, "half_lives_days": list(HALF_LIVES_DAYS),
        "ndcg1_by_history": {e.name: e.ndcg1_by_history for e in evaluations}}


def collect(log: EventLog, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
    """Every message of the window's event days, each messageId once."""
    last = (until - dt.timedelta(microseconds=1)).date()
    messages = log.read_days(since.date(), last)
    if not messages:
        days = log.event_days()
        found = (f"the log holds events from {days[0]} to {days[-1]} ({len(days):,} days)"
                 if days else "the log holds no events")
        raise ModelError(f"no events in the log from {since:%Y-%m-%d} to {last:%Y-%m-%d} "
                         f"by event time; {found} ({log.describe()})")
    return messages


def split_by_time(events: list[Event], catalog: Catalog, lateness_s: float,
                  since: dt.datetime, until: dt.datetime, rank_limit: int = 500
                  ) -> tuple[tuple[Examples, Examples, Examples], tuple[float, float],
                             dict[str, int]]:
    """(train, validation, test) examples by slate time, the two cuts, and the skips."""
    slates = shown_slates(events)
    span = decision_span(events, since.timestamp(), until.timestamp(), slates)
    if span is None:
        views = [e.timestamp for e in events
                 if e.engagement is not None and e.engagement.kind == "view"]
        found = (f"{len(views):,} views were read, from {min(views):%Y-%m-%d %H:%M} to "
                 f"{max(views):%Y-%m-%d %H:%M}" if views else
                 f"{len(events):,} events were read, none a Variant Viewed")
        raise ModelError(f"no slates (Variant Viewed events) or session starts from "
                         f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} by event time: "
                         f"{found}")
    first, last = span
    cut_train = first + (last - first) * TRAIN_SHARE
    cut_valid = first + (last - first) * (TRAIN_SHARE + VALID_SHARE)
    examples = build_examples(events, catalog, lateness_s, since.timestamp(),
                              until.timestamp(), keep_candidates=True,
                              keep_candidates_since=cut_valid,
                              keep_sessions_since=cut_train,  # trending's half-life
                              rank_limit=rank_limit,
                              clickless_from=cut_valid,  # training drops them
                              clickless_kept=clickless_sample.KEPT,  # evaluation samples
                              workers=available_workers(), slates=slates)
    if examples.groups == 0 and examples.left_out == 0:
        raise ModelError("no slate in the window shows two or more published variants, and "
                         "no session start was followed by a click")
    at = examples.group_time
    train_set = examples.select(at < cut_train).with_clicks()
    valid_set = examples.select((at >= cut_train) & (at < cut_valid)).with_clicks()
    if train_set.groups == 0:
        raise ModelError("no clicks in the training part of the window: nothing to learn")
    return ((train_set, valid_set, examples.select(at >= cut_valid)), (cut_train, cut_valid),
            examples.skipped)


def _window(catalog: Catalog, days: int, since: dt.datetime | None,
            until: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """(since, until) of the training window, checked; until defaults to now."""
    until = until or dt.datetime.now(dt.UTC)
    since = since or until - dt.timedelta(days=days)
    if since >= until:
        raise ModelError(f"the window is empty: since {since:%Y-%m-%d %H:%M} is not before "
                         f"until {until:%Y-%m-%d %H:%M}")
    if not catalog.placements:
        raise ModelError("the manifest has no placements: publish content first")
    return since, until


def _production_ranker(registry: Registry, version: str | None) -> Ranker:
    if not version:
        return BaselineRanker()
    text, card = registry.load(version)
    return LightGBMRanker.from_card(version, text, card)


class _Steps:
    """Seconds spent in each step, and the step reported to the caller."""

    def __init__(self, on_step: Callable[[str], None]) -> None:
        self._on_step = on_step
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._started = time.perf_counter()

    def start(self, step: str | None) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = now - self._started
        self._current, self._started = step, now
        if step is not None:
            self._on_step(step)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(float(np.floor(ts)), dt.UTC).isoformat()
