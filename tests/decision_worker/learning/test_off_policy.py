"""Off-policy evaluation: estimates of a policy that never served, from a log that explored,
against a synthetic population whose true click-through is known."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pytest

from decision_worker.ingest.decision_log import DecisionLog
from decision_worker.ingest.event_log import EventLog
from decision_worker.ingest.events import DEFAULT_RULES
from decision_worker.learning.intervals import paired_difference
from decision_worker.learning.off_policy import (
    OffPolicyEstimate,
    dr_terms,
    estimate,
    off_policy_report,
)
from decision_worker.learning.pipeline import collect, run_training
from decision_worker.learning.promotion_basis import (
    MIN_LOGGED_DECISIONS,
    MIN_LOGGED_USERS,
    OFF_POLICY_PRIMARY,
    promotion_basis,
)
from decision_worker.learning.registry import Registry
from decision_worker.learning.replay import parse_log
from decision_worker.learning.synthetic import Population
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.exploration import first_slot
from decision_worker.ranking.features import FEATURES
from decision_worker.ranking.ranker import BaselineRanker
from decision_worker.ranking.trait_columns import NUMERIC, TraitColumn
from edge_functions.bucketing import in_holdout
from edge_functions.keys import MANIFEST_KEY
from edgepick.training_cli import off_policy_lines, promotion_lines
from object_store.folder import FolderStore

from ..conftest import NOW, Settings, track
from ..online.test_why_records import explore

VARIANTS = {f"b{i}": {"category": f"look-{i}"} for i in range(6)}
PLACEMENT = "banner"


def banner_catalog() -> Catalog:
    return Catalog.from_document({"format": 1, "rev": 1, "placements": {PLACEMENT: {
        "default": "b0", "variants": {
            v: {"url": f"https://cdn.test/content/{PLACEMENT}/variant-{v}.0123abcd.json",
                **meta} for v, meta in VARIANTS.items()}}}})


def logged_run(seed: int, users: int = 3000, epsilon: float = 0.3
               ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, float]:
    """An epsilon-greedy log (greedy: the default) of one decision per synthetic user, the
    target policy's probability of each logged choice (the user's favourite category, a
    policy the log never followed greedily) and its true click-through."""
    catalog = banner_catalog()
    population = Population(catalog, users, seed=seed)
    variants = catalog.placements[PLACEMENT].variants
    rng = np.random.default_rng(seed + 1000)
    eligible, new = np.ones(len(variants), dtype=bool), np.zeros(len(variants), dtype=bool)
    names, propensity, reward, target, truth = [], [], [], [], []
    for user in population.users:
        favourite = next(v for v in variants
                         if VARIANTS[v]["category"] == user.favourite[PLACEMENT])
        served = first_slot(0, eligible, new, epsilon, 0.0, tuple(rng.random(3)))
        variant = variants[served.index]
        names.append(user.user_id)
        propensity.append(served.propensity)
        reward.append(float(rng.random() < population.click_probability(user, PLACEMENT,
                                                                          variant)))
        target.append(float(variant == favourite))
        truth.append(population.click_probability(user, PLACEMENT, favourite))
    return (names, np.array(propensity), np.array(reward), np.array(target),
            float(np.mean(truth)))


def test_the_interval_of_a_known_policy_covers_its_true_click_through() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    seeds = range(20)
    for seed in seeds:
        users, propensity, reward, target, truth = logged_run(seed)
        rhat = np.full(len(users), 0.05)  # a crude reward model: one rate for everything
        found = estimate("favourite", users, propensity, reward, target, rhat, rhat)
        assert 0.03 < found.support < 0.07  # only explored draws hit the favourite: 0.3 / 6
        for name in covered:
            interval = getattr(found, name)
            covered[name] += interval.low <= truth <= interval.high
            assert abs(interval.value - truth) < 0.1, (name, interval, truth)
    # 95 % intervals: 19 of 20 expected; at least 17 leaves room for the seeds' luck
    assert min(covered.values()) >= 17, covered


def paired_run(seed: int, users: int = 2000, decisions: int = 4, epsilon: float = 0.3
               ) -> tuple[float, float]:
    """An epsilon-greedy log (greedy: the default), `decisions` per synthetic user; the DR
    difference "favourite category" − logging policy with its reward model a crude rate per
    variant (the mean of the hidden probabilities, off by a variant-dependent factor), its
    interval's bounds checked, and the true difference."""
    catalog = banner_catalog()
    population = Population(catalog, users, seed=seed)
    variants = catalog.placements[PLACEMENT].variants
    rng = np.random.default_rng(seed + 2000)
    eligible, new = np.ones(len(variants), dtype=bool), np.zeros(len(variants), dtype=bool)
    truth = np.array([[population.click_probability(u, PLACEMENT, v) for v in variants]
                      for u in population.users])
    rhat = truth.mean(axis=0) * np.linspace(0.5, 1.5, len(variants))
    logging = np.full(len(variants), epsilon / len(variants))
    logging[0] += 1 - epsilon
    names, served_p, reward, rhat_served, mine, theirs, direct_mine = [], [], [], [], [], [], []
    for u, user in enumerate(population.users):
        favourite = next(i for i, v in enumerate(variants)
                         if VARIANTS[v]["category"] == user.favourite[PLACEMENT])
        for _ in range(decisions):
            served = first_slot(0, eligible, new, epsilon, 0.0, tuple(rng.random(3)))
            assert served.propensity == pytest.approx(logging[served.index])
            names.append(user.user_id)
            served_p.append(served.propensity)
            reward.append(float(rng.random() < truth[u, served.index]))
            rhat_served.append(rhat[served.index])
            mine.append(float(served.index == favourite))
            theirs.append(served.propensity)
            direct_mine.append(rhat[favourite])
    p, r, served_rhat = np.array(served_p), np.array(reward), np.array(rhat_served)
    difference = paired_difference(
        names, dr_terms(p, r, np.array(mine), np.array(direct_mine), served_rhat),
        dr_terms(p, r, np.array(theirs), np.full(len(p), logging @ rhat), served_rhat))
    assert difference.users == users and difference.groups == users * decisions
    favourites = [next(i for i, v in enumerate(variants)
                       if VARIANTS[v]["category"] == u.favourite[PLACEMENT])
                  for u in population.users]
    true_difference = float(np.mean(truth[np.arange(users), favourites]) - np.mean(truth @ logging))
    covered = difference.low <= true_difference <= difference.high
    return abs(difference.value - true_difference), float(covered)


def test_the_paired_difference_of_two_policies_covers_the_true_difference() -> None:
    """What promotion decides on where the log has propensities: DR of a target − DR of the
    logging policy, decision by decision, users resampled (each user decides several times:
    their decisions move together)."""
    runs = [paired_run(seed) for seed in range(20)]
    errors, covered = zip(*runs, strict=True)
    assert max(errors) < 0.04, errors  # the true difference is about 0.13
    # 95 % intervals: 19 of 20 expected; at least 17 leaves room for the seeds' luck
    assert sum(covered) >= 17, covered


def test_a_policy_that_serves_what_was_logged_estimates_the_logged_click_through() -> None:
    users, propensity, reward, _, _ = logged_run(3, users=500)
    logging = estimate("logging", users, propensity, reward, propensity,
                       np.zeros(len(users)), np.zeros(len(users)))
    assert logging.support == 1.0
    assert logging.ips.value == logging.snips.value == logging.dr.value == reward.mean()


def test_training_estimates_policies_off_policy_from_the_workers_decision_log(
        ingest, drain, decision, redis, worker_settings) -> None:
    explore(redis, "hero", 0.3)
    explore(redis, "cta", 0.3)
    # popularity read before every batch, as the replay reads it as of each moment (the
    # worker's 5 s of wall clock are not 5 s of event time in a test that posts a day at once)
    settings = dataclasses.replace(worker_settings, stats_reload_s=0.0)
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    population = Population(catalog, 150, seed=9)
    end = NOW.replace(microsecond=0) - dt.timedelta(minutes=10)
    # history: shown slates and clicks (no session starts: the worker decides at the end)
    history = list(population.history(8, end - dt.timedelta(minutes=5),
                                      span=dt.timedelta(days=1)))
    for start in range(0, len(history), 1000):  # requests under the API's 500 KB
        ingest(history[start:start + 1000])
    drain(settings)
    ingest(list(population.session_starts(end)))  # one decision per user and placement
    drain(settings)
    # each user sees what was served first, and clicks as the population's model says
    rng = np.random.default_rng(4)
    seen = []
    for user in population.users:
        for placement in catalog.placements:
            served = decision(user.user_id, placement).ranked[0]
            props = {"placement": placement, "variant": served, "position": 0}
            at = end + dt.timedelta(seconds=2)
            seen.append(track(user.user_id, "Variant Viewed", f"{user.user_id}-{placement}-v",
                              at, **props))
            if rng.random() < population.click_probability(user, placement, served):
                seen.append(track(user.user_id, "Variant Clicked",
                                  f"{user.user_id}-{placement}-c",
                                  at + dt.timedelta(seconds=3), **props))
    for start in range(0, len(seen), 1000):
        ingest(seen[start:start + 1000])
    drain(settings)
    assert worker_settings.origin_dir is not None
    log = EventLog(FolderStore(worker_settings.origin_dir))
    report = run_training(log, catalog, Registry(FolderStore(worker_settings.origin_dir)),
                          worker_settings.lateness_s, until=end + dt.timedelta(minutes=5),
                          days=3, secret=worker_settings.key_secret_bytes)
    off = report.off_policy
    assert off is not None
    treated = sum(not in_holdout(u.user_id, worker_settings.holdout_share)
                  for u in population.users)
    assert off.replayed == treated * len(catalog.placements)  # every session decision found
    candidate, production = off.estimates
    assert candidate.policy == "candidate" and production.policy == "production (baseline-2)"
    # production is the logging policy: the replay gives every logged choice the very
    # probability the worker drew it with, so the estimates are the logged click-through
    assert production.support == 1.0
    assert production.ips.value == production.snips.value == off.logged_ctr.value > 0
    assert candidate.ips.low <= candidate.ips.value <= candidate.ips.high
    # promotion decides on the paired DR difference once the log holds enough decisions
    assert off.comparison is not None and off.replayed >= MIN_LOGGED_DECISIONS
    assert off.comparison.value == pytest.approx(candidate.dr.value - production.dr.value)
    assert off.comparison.low < off.comparison.value < off.comparison.high
    assert (report.primary, report.comparison) == (OFF_POLICY_PRIMARY, off.comparison)
    assert report.evaluated_on == "s_ndcg@5" and report.offline_comparison is not None
    card = Registry(FolderStore(worker_settings.origin_dir)).load(report.version)[1]
    assert card["primary"] == OFF_POLICY_PRIMARY and card["evaluated_on"] == "s_ndcg@5"
    assert card["metrics"]["candidate"][OFF_POLICY_PRIMARY] == candidate.dr.value
    assert card["comparison"]["low"] == off.comparison.low
    assert promotion_lines(report)[0].startswith(
        "promotion decides on the off-policy estimate, fair to both where production made "
        "the decisions: candidate − production on dr_ctr@1 (doubly robust): ")
    assert card["metrics"]["production"][OFF_POLICY_PRIMARY] == production.dr.value
    # the thresholds, at their edges: decisions and users behind the paired difference
    offline = ("s_ndcg@5", report.offline_comparison)
    for groups, users, decides in ((MIN_LOGGED_DECISIONS, MIN_LOGGED_USERS, OFF_POLICY_PRIMARY),
                                   (MIN_LOGGED_DECISIONS - 1, 500, "s_ndcg@5"),
                                   (5000, MIN_LOGGED_USERS - 1, "s_ndcg@5")):
        paired = dataclasses.replace(off.comparison, groups=groups, users=users)
        assert promotion_basis(*offline, dataclasses.replace(off, comparison=paired))[0] \
            == decides
        if decides != OFF_POLICY_PRIMARY:  # the offline metric decides: the command says why
            assert promotion_lines(dataclasses.replace(
                report, primary="s_ndcg@5", comparison=report.offline_comparison,
                off_policy=dataclasses.replace(off, comparison=paired))) == [
                f"promotion decides on s_ndcg@5: the off-policy comparison needs "
                f"{MIN_LOGGED_DECISIONS} logged decisions of {MIN_LOGGED_USERS} users or more, "
                f"and {groups:,} of {users:,} were replayed"]
    # nothing replayed: no paired difference, and the command says so
    none = dataclasses.replace(off, comparison=None)
    assert promotion_basis(*offline, none) == offline
    assert promotion_lines(dataclasses.replace(report, primary="s_ndcg@5", off_policy=none)) == [
        "promotion decides on s_ndcg@5: no logged decision of the evaluation window was found "
        "in the replay"]
    trait_models_are_replayed(log, catalog, card, worker_settings, production)
    lines = off_policy_lines(off)
    assert lines[0].startswith(f"off-policy, first slot: {off.replayed:,} of ")
    assert lines[1].startswith("  candidate: IPS ") and "SNIPS" in lines[1]
    assert off_policy_lines(None) == ["off-policy: no logged propensities (the decision log "
                                      "holds no decisions in the window)"]


class TraitReading(BaselineRanker):
    """The baseline's scores, from rows that must carry one trait column after FEATURES."""

    version = "trait-reading"
    traits = (TraitColumn("plan", NUMERIC, ()),)

    def score(self, rows: np.ndarray) -> np.ndarray:
        assert rows.shape[1] == len(FEATURES) + 1, rows.shape
        return super().score(rows[:, :len(FEATURES)])


def trait_models_are_replayed(log: EventLog, catalog: Catalog, card: dict[str, Any],
                              settings: Settings, production: OffPolicyEstimate) -> None:
    """A model reading declared traits is scored on rows with its trait columns: scoring as
    the baseline does, it is estimated exactly as the baseline (production) was."""
    window = card["window"]
    since, until = (dt.datetime.fromisoformat(window[k]) for k in ("since", "until"))
    events, _ = parse_log(collect(log, since, until), DEFAULT_RULES, log.read_tombstones(),
                          settings.key_secret_bytes)
    decisions = DecisionLog(log.store).read_days(since.date(), until.date(),
                                                 log.read_tombstones())
    both = off_policy_report(events, catalog, decisions,
                             {"candidate": TraitReading(), "production": BaselineRanker()},
                             settings.key_secret_bytes, settings.lateness_s,
                             dt.datetime.fromisoformat(window["valid_until"]).timestamp(),
                             until.timestamp())
    assert [e.dr for e in both.estimates] == [production.dr, production.dr]
    assert both.comparison is not None and both.comparison.value == 0.0
