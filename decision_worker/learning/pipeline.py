"""`edgepick train`: collect → features → train → evaluate → register, on a rolling window.

The window is `days` days of the event log ending at `until` (exclusive; default now).
Its slates are split by time: the first 70 % train, the next 10 % stop training early, the
last 20 % evaluate the candidate, the production model (the baseline ranker until a model
is promoted) and plain popularity, side by side. The candidate is registered with its card
(spec, parameters, window, metrics) and becomes the shadow model; `edgepick promote`
decides whether it serves.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decision_worker.errors import ModelError
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import DEFAULT_RULES, EventRules
from decision_worker.learning.evaluation import Evaluation, evaluate, popularity_scorer
from decision_worker.learning.examples import build_examples, slate_times
from decision_worker.learning.registry import Registry
from decision_worker.learning.replay import parse_log
from decision_worker.learning.training import train
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.features import CATEGORICAL, ENCODINGS, FEATURES
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.ranker import BaselineRanker, Ranker

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


def run_training(log: EventLog, catalog: Catalog, registry: Registry, lateness_s: float,
                 days: int = 7, until: dt.datetime | None = None,
                 params: dict[str, Any] | None = None,
                 on_step: Callable[[str], None] = lambda step: None,
                 rules: EventRules = DEFAULT_RULES, secret: bytes = b"") -> TrainingReport:
    """`secret` (EDGEPICK_KEY_SECRET) recognises forgotten ids in the log's tombstones."""
    until = until or dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(days=days)
    if not catalog.placements:
        raise ModelError("the manifest has no placements: publish content first")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    on_step("collect")
    messages: list[dict[str, Any]] = []
    seen: set[str] = set()
    day = since.date()
    while day <= until.date():
        for message in log.read_day(day):
            if message["messageId"] not in seen:
                seen.add(message["messageId"])
                messages.append(message)
        day += dt.timedelta(days=1)
    if not messages:
        raise ModelError(f"no events in the log from {since:%Y-%m-%d} to {until:%Y-%m-%d} "
                         f"({log.describe()})")
    events, invalid = parse_log(messages, rules, log.read_tombstones(), secret)
    seconds["collect"], clock = time.perf_counter() - clock, time.perf_counter()

    on_step("features")
    times = slate_times(events, since.timestamp(), until.timestamp())
    if len(times) == 0:
        raise ModelError("no slates (Variant Viewed events) in the window")
    first, last = float(times[0]), float(times[-1])
    cut_train = first + (last - first) * TRAIN_SHARE
    cut_valid = first + (last - first) * (TRAIN_SHARE + VALID_SHARE)
    examples = build_examples(events, catalog, lateness_s, since.timestamp(),
                              until.timestamp(), keep_candidates=True,
                              keep_candidates_since=cut_valid)
    if examples.groups == 0:
        raise ModelError("no slate in the window shows two or more published variants")
    train_set = examples.select(examples.group_time < cut_train).with_clicks()
    valid_set = examples.select((examples.group_time >= cut_train)
                                & (examples.group_time < cut_valid)).with_clicks()
    test_set = examples.select(examples.group_time >= cut_valid)
    if train_set.groups == 0:
        raise ModelError("no clicks in the training part of the window: nothing to learn")
    seconds["features"], clock = time.perf_counter() - clock, time.perf_counter()

    on_step("train")
    trained = train(train_set, valid_set, params)
    model_text = trained.model_text()
    version = f"lgbm-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    candidate = LightGBMRanker(version, model_text, list(FEATURES))
    seconds["train"], clock = time.perf_counter() - clock, time.perf_counter()

    on_step("evaluate")
    production_version = registry.pointers().get("production")
    production: Ranker = BaselineRanker()
    if production_version:
        text, card = registry.load(production_version)
        production = LightGBMRanker(production_version, text, card["features"],
                                    card.get("encodings"))
    evaluations = [evaluate("candidate", candidate.score, test_set, catalog),
                   evaluate(f"production ({production.version})", production.score, test_set,
                            catalog),
                   evaluate("popularity", popularity_scorer, test_set, catalog)]
    seconds["evaluate"] = time.perf_counter() - clock

    card = {
        "features": list(FEATURES), "categorical": list(CATEGORICAL),
        "encodings": ENCODINGS,
        "params": trained.params, "rounds": trained.rounds,
        "window": {"since": since.isoformat(), "until": until.isoformat(),
                   "train_until": _iso(cut_train), "valid_until": _iso(cut_valid)},
        "examples": {"train_groups": train_set.groups, "valid_groups": valid_set.groups,
                     "test_groups": test_set.groups, "skipped": examples.skipped},
        "production_version": production_version,
        "metrics": {"candidate": evaluations[0].metrics, "production": evaluations[1].metrics,
                    "popularity": evaluations[2].metrics},
        "ndcg1_by_history": {e.name: e.ndcg1_by_history for e in evaluations},
        "trained_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    registry.register(version, model_text, card)
    return TrainingReport(version, (since.isoformat(), until.isoformat()), len(messages),
                          invalid, getattr(log, "corrupt_lines", 0),
                          {"train": train_set.groups, "valid": valid_set.groups,
                           "test": test_set.groups},
                          examples.skipped, evaluations, trained.rounds, seconds,
                          production_version)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(float(np.floor(ts)), dt.UTC).isoformat()
