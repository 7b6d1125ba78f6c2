"""Learning to rank on the synthetic test bed: training from the event log, offline
evaluation, position debiasing, the registry's promotion rules, and the worker following
the production pointer (compiled predictor, hot reload, refusal of bad artifacts)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.errors import ModelError, RegistryError
from decision_worker.ingest.event_log import EventLog
from decision_worker.learning.cold_start import BELOW
from decision_worker.learning.examples import build_examples
from decision_worker.learning.pipeline import run_training
from decision_worker.learning.registry import Registry
from decision_worker.learning.replay import parse_log
from decision_worker.learning.synthetic import Population, as_logged, log_messages
from decision_worker.learning.training import train
from decision_worker.online.worker import Worker
from decision_worker.ranking.candidates import Catalog
from decision_worker.ranking.compiled import probe_rows
from decision_worker.ranking.features import COLUMN, FEATURES
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from edge_functions.decision_record import decode
from edge_functions.keys import MANIFEST_KEY, decision_key, user_tag
from object_store.folder import FolderStore
from tests.conftest import Settings

from ..conftest import track, write_catalog

SHOP = {
    "hero": ("h0", {f"h{i}": {"category": f"look-{i % 5}"} for i in range(10)}),
    "cta": ("k0", {f"k{i}": {"category": f"offer-{i % 4}"} for i in range(8)}),
}
# Yesterday at noon, not "an hour ago": the logs are built back from END and trending
# counts by event day, so an END that moved with the clock moved events across midnight
# and the models (and these tests' margins) changed with the hour the tests ran.
END = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1), dt.time(12),
                         dt.UTC)
# Measured: on this bed the candidate's NDCG@1 is 0.497 against popularity's 0.345 (1.44 ×;
# 1.60 × with 4,000 users × 30 slates, docs/benchmarks.md). The test asks for the issue's
# 1.2 ×, which leaves room for other seeds and platforms.
MARGIN = 1.2


def log_population(settings, population: Population, impressions: int, days: float,
                   **history) -> EventLog:
    log = EventLog(FolderStore(settings.origin_dir))
    summary = log_messages(log, as_logged(population.history(
        impressions, END, dt.timedelta(days=days), **history)))
    assert summary.bad_lines == 0
    return log


def shop_catalog() -> Catalog:
    return Catalog.from_document({"format": 1, "rev": 1, "placements": {
        placement: {"default": default, "variants": {
            v: {"url": f"https://cdn.test/content/{placement}/variant-{v}.0123abcd.json",
                "locale": None, "starts_at": None, "ends_at": None, **meta}
            for v, meta in variants.items()}}
        for placement, (default, variants) in SHOP.items()}})


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory):
    """A candidate trained once for the module, on a population with strong, known
    preferences (1,500 users × 24 slates over 6 days)."""
    origin = tmp_path_factory.mktemp("bed")
    settings = Settings(origin=f"file://{origin}")
    registry = Registry(FolderStore(origin))
    log = log_population(settings, Population(shop_catalog(), 1500, seed=21), 24, 6)
    report = run_training(log, shop_catalog(), registry, settings.lateness_s, days=7,
                          until=END + dt.timedelta(minutes=5))
    text, card = registry.load(report.version)
    return report, text, card


@pytest.fixture
def shop(redis: Redis) -> Catalog:
    write_catalog(redis, SHOP)
    return Catalog.from_bytes(redis.get(MANIFEST_KEY))


@pytest.fixture
def registry(settings) -> Registry:
    return Registry(FolderStore(settings.origin_dir))


@pytest.fixture
def trained(bed, registry):
    """The bed's candidate, registered in this test's own registry (as the shadow model)."""
    report, text, card = bed
    registry.register(report.version, text, card)
    return report


def test_learned_ranker_beats_popularity_on_a_later_window(trained, registry) -> None:
    candidate, production, trending, popularity = (e.metrics for e in trained.evaluations)
    assert candidate["ndcg@1"] >= MARGIN * popularity["ndcg@1"], trained.evaluations
    assert trained.evaluations[2].name.startswith("trending (")
    assert candidate["auc"] > 0.55 and candidate["coverage"] > 0
    assert trained.groups["test"] > 1000 and trained.rounds >= 1
    assert trained.off_policy is None  # an imported history: no decision log, no propensities
    pointers = registry.pointers()
    assert pointers["shadow"] == trained.version and pointers["production"] is None
    text, card = registry.load(trained.version)
    assert card["features"] == list(FEATURES) and card["window"]["train_until"]
    # no session start in this log, so no session context: every row has device "unknown",
    # and a column with one value is not read (nor encoded)
    assert "device" not in card["columns"] and "device" not in card["encodings"]
    assert card["dropped"]["device"] == "one value in every training row"
    assert set(card["columns"]) < set(FEATURES) and card["feature_config"]["traits"] == {}
    assert card["metrics"]["candidate"]["ndcg@1"] == candidate["ndcg@1"]
    comparison, primary = card["comparison"], card["primary"]  # with its interval
    assert comparison["low"] <= comparison["value"] <= comparison["high"]
    assert comparison["users"] > 100 and primary in candidate
    assert card["half_lives_days"] == [1, 7, 30, 365]
    assert LightGBMRanker.from_card(trained.version, text, card).score(probe_rows()).shape \
        == (512,)


def test_position_debiasing_does_not_learn_that_the_top_slot_is_good(settings) -> None:
    # No true preference at all, but the logging policy always puts h1 in the top slot, so
    # h1 collects the position bias's clicks. Measure how much higher each model scores h1
    # than the other candidates of the same moment. Measured on 4 seeds (5, 6, 7, 8):
    # without debiasing 0.67 / 0.85 / 0.90 / 0.00, with it -0.02 / 0.58 / 0.12 / -0.26.
    catalog = Catalog.from_document({"format": 1, "rev": 1, "placements": {"hero": {
        "default": "h0", "variants": {f"h{i}": {"url": f"https://cdn.test/h{i}.json",
                                                "category": f"look-{i % 3}"}
                                      for i in range(6)}}}})
    gaps: dict[bool, list[float]] = {True: [], False: []}
    for seed in (5, 7):
        population = Population(catalog, 1500, seed=seed, favourite=1.0, default_taste=1.0,
                                fatigue=1.0, base_ctr=0.15)
        events, _ = parse_log(as_logged(population.history(
            16, END, dt.timedelta(days=4), always_first={"hero": "h1"})))
        examples = build_examples(events, catalog, settings.lateness_s, keep_candidates=True)
        cut = np.quantile(examples.group_time, [0.7, 0.8])
        train_set = examples.select(examples.group_time < cut[0]).with_clicks()
        valid_set = examples.select((examples.group_time >= cut[0])
                                    & (examples.group_time < cut[1])).with_clicks()
        test_set = examples.select(examples.group_time >= cut[1])
        for debias in (True, False):
            model = train(train_set, valid_set, {"num_boost_round": 30, "learning_rate": 0.1,
                                                 "num_leaves": 31, "min_data_in_leaf": 40},
                          position_debiasing=debias, early_stopping=None)
            ranker = LightGBMRanker("t", model.model_text(), model.spec)
            for kept in test_set.candidates:
                rows, ids = kept if kept is not None else (None, [])
                if "h1" in ids:
                    scores = ranker.score(rows)
                    i = ids.index("h1")
                    gaps[debias].append(scores[i] - np.delete(scores, i).mean())
    naive, debiased = float(np.mean(gaps[False])), float(np.mean(gaps[True]))
    assert naive > 0.3  # without debiasing it learns "the top slot is good"
    assert debiased < naive / 2, (naive, debiased)


def test_promotion_refused_for_a_worse_candidate_allowed_for_a_better_one(trained,
                                                                           registry) -> None:
    text, card = registry.load(trained.version)
    worse = json.loads(json.dumps(card))
    # better on average, but the interval of the difference reaches below zero
    worse["comparison"].update(value=0.01, low=-0.002, high=0.02)
    registry.register("lgbm-worse", text, worse)
    with pytest.raises(RegistryError, match="does not exclude zero"):
        registry.promote("lgbm-worse")
    no_interval = json.loads(json.dumps(card))
    del no_interval["comparison"]
    registry.register("lgbm-old-card", text, no_interval)
    with pytest.raises(RegistryError, match="no interval"):
        registry.promote("lgbm-old-card")
    guarded = json.loads(json.dumps(card))
    guarded["comparison"].update(value=0.05, low=0.01, high=0.09)
    guarded["metrics"]["candidate"]["auc"] = guarded["metrics"]["production"]["auc"] - 0.2
    guarded["metrics"]["candidate"]["coverage"] = \
        guarded["metrics"]["production"]["coverage"] * 0.3  # under a third of production's
    registry.register("lgbm-guarded", text, guarded)
    with pytest.raises(RegistryError, match=r"AUC.*coverage .* is under 33%"):
        registry.promote("lgbm-guarded")
    assert registry.pointers()["production"] is None
    better = json.loads(json.dumps(card))
    better["comparison"].update(value=0.05, low=0.01, high=0.09)
    better["metrics"]["candidate"]["auc"] = better["metrics"]["production"]["auc"]
    better["metrics"]["candidate"]["coverage"] = better["metrics"]["production"]["coverage"]
    better["metrics"]["candidate"]["diversity"] = better["metrics"]["production"]["diversity"]
    registry.register("lgbm-better", text, better)
    assert registry.promote("lgbm-better") == "lgbm-better"
    # evaluated against the baseline, but production has moved on since: train again
    with pytest.raises(RegistryError, match="train again"):
        registry.promote(trained.version)
    assert registry.promote("lgbm-worse", force_reason="incident 42: revert a bad config") \
        == "lgbm-worse"
    log = registry.pointers()["log"]
    assert log[-1]["why"] == "forced: incident 42: revert a bad config"


def test_promotion_decides_on_the_off_policy_estimate_when_the_card_says_so(
        trained, registry) -> None:
    """Where production made the logged decisions, the session metric favours it (clicks
    land on what it served): a card whose primary is the off-policy estimate is judged on
    that estimate's interval, whatever the session metric and its AUC say."""
    text, card = registry.load(trained.version)
    doc = json.loads(json.dumps(card))
    mine, theirs = doc["metrics"]["candidate"], doc["metrics"]["production"]
    mine.update(auc=theirs["auc"] - 0.2, coverage=theirs["coverage"],
                diversity=theirs["diversity"], **{"dr_ctr@1": 0.15})
    theirs["dr_ctr@1"] = 0.11
    doc.update(evaluated_on="s_ndcg@5", primary="dr_ctr@1",
               offline_comparison={"value": -0.1, "low": -0.15, "high": -0.05,
                                   "groups": 300, "users": 150},
               comparison={"value": 0.04, "low": -0.01, "high": 0.09,
                           "groups": 300, "users": 150})
    registry.register("lgbm-unsure", text, doc)
    with pytest.raises(RegistryError, match=r"dr_ctr@1 0\.1500 vs production's 0\.1100: .*"
                                            r"\[-0\.0100, \+0\.0900\] does not exclude zero"):
        registry.promote("lgbm-unsure")
    doc["comparison"].update(low=0.01)
    no_metric = json.loads(json.dumps(doc))
    del no_metric["metrics"]["production"]["dr_ctr@1"]
    registry.register("lgbm-no-metric", text, no_metric)
    with pytest.raises(RegistryError, match="its card has no dr_ctr@1 of both models"):
        registry.promote("lgbm-no-metric")
    # the AUC guards a model evaluated on slates, whatever promotion decides on
    on_slates = {**json.loads(json.dumps(doc)), "evaluated_on": "ndcg@1"}
    registry.register("lgbm-on-slates", text, on_slates)
    with pytest.raises(RegistryError, match=r"AUC .* dropped more than 0\.02") as refused:
        registry.promote("lgbm-on-slates")
    assert "dr_ctr@1" not in str(refused.value)  # it won on the off-policy estimate
    # a card from before `evaluated_on`: its primary says what it was evaluated on
    legacy = {k: v for k, v in on_slates.items() if k != "evaluated_on"}
    legacy.update(primary="ndcg@1", comparison={**doc["comparison"]})
    registry.register("lgbm-legacy", text, legacy)
    with pytest.raises(RegistryError, match=r"AUC .* dropped"):
        registry.promote("lgbm-legacy")
    registry.register("lgbm-off-policy", text, doc)
    assert registry.promote("lgbm-off-policy") == "lgbm-off-policy"
    assert registry.pointers()["log"][-1]["why"] == "won on dr_ctr@1"


def test_rollback_returns_to_the_previous_production(trained, registry) -> None:
    text, card = registry.load(trained.version)
    for version in ("lgbm-a", "lgbm-b"):
        registry.register(version, text, card)
        registry.promote(version, force_reason="test")
    assert registry.pointers()["production"] == "lgbm-b"
    assert registry.rollback() == "lgbm-a"
    assert registry.rollback() is None  # back to the baseline ranker
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()


def test_compiled_predictor_gives_the_same_predictions(trained, registry, tmp_path: Path,
                                                       shop, settings) -> None:
    text, card = registry.load(trained.version)
    ranker = LightGBMRanker.from_card(trained.version, text, card)
    rows = np.vstack([probe_rows(), probe_rows(seed=3)])
    reference = ranker.score(rows)
    assert ranker.compile(tmp_path / "compiled") and ranker.compiled is not None
    np.testing.assert_allclose(ranker.score(rows), reference, rtol=1e-12, atol=1e-12)


def test_worker_follows_production_and_refuses_bad_artifacts(trained, registry, redis: Redis,
                                                             ingest, settings,
                                                             worker_settings) -> None:
    text, card = registry.load(trained.version)
    registry.promote(trained.version, force_reason="test the hot reload")
    # an artifact corrupted after its promotion, and one from another feature spec
    registry.register("lgbm-corrupt", text, card)
    other_spec = {**card, "features": list(FEATURES[:-1]) + ["u_shoe_size"]}
    registry.register("lgbm-otherspec", text, other_spec)
    # reads a device column whose codes this worker cannot produce (no "(other)" either)
    other_codes = {**card, "columns": [*card["columns"][:-1], "device"],
                   "encodings": {**card["encodings"], "device": ["tv", "phone"]}}
    registry.register("lgbm-othercodes", text, other_codes)
    registry.register("lgbm-b", text, card)
    secret = settings.key_secret_bytes
    seen: list[str] = []

    async def scenario() -> None:
        client = AsyncRedis.from_url(settings.redis_url)
        worker = Worker(client, dataclasses.replace(worker_settings, holdout_share=0.0),
                        registry=registry, consumer="reload")
        worker.inputs.model_check_s = 0.0
        steps = [None, "lgbm-b", "lgbm-corrupt", "lgbm-otherspec", "lgbm-othercodes",
                 "rollback"]
        for n, promote in enumerate(steps):
            if promote == "rollback":  # othercodes → otherspec → corrupt → b → the first
                for _ in range(4):
                    registry.rollback()
            elif promote:
                registry.promote(promote, force_reason="test a bad artifact")
                if promote == "lgbm-corrupt":
                    registry.store.put("models/lgbm-corrupt/model.txt", b"tree\ngarbage")
            user = f"reload-{n}"
            await asyncio.to_thread(ingest, [track(user, "Session Started", f"rs-{n}")])
            await worker.run(burst=True)
            raw = redis.get(decision_key(user_tag(secret, user), "hero"))
            seen.append(decode(raw).model_version)
        await client.aclose()

    asyncio.run(scenario())
    # each production model picked up without a restart; the bad artifacts refused while
    # the worker keeps scoring with the model it has; the rollbacks followed too
    assert seen == [trained.version, "lgbm-b", "lgbm-b", "lgbm-b", "lgbm-b", trained.version]


def test_bad_training_inputs_are_clear_errors(shop, settings, registry) -> None:
    empty = EventLog(FolderStore(settings.origin_dir))
    with pytest.raises(ModelError, match="no events in the log"):
        run_training(empty, shop, registry, settings.lateness_s, days=2, until=END)
    # a window with views but no clicks
    no_clicks = Population(shop, 50, seed=1, base_ctr=0.0)
    log = log_population(settings, no_clicks, 6, 1)
    with pytest.raises(ModelError, match="no clicks"):
        run_training(log, shop, registry, settings.lateness_s, days=2,
                     until=END + dt.timedelta(minutes=5))
    # corrupt lines are skipped and counted, never fatal
    path = next(Path(settings.origin_dir, "events").glob("event_day=*/*.jsonl"))
    with path.open("a") as f:
        f.write('{"torn line\n')
    fresh = EventLog(FolderStore(settings.origin_dir))
    day = dt.date.fromisoformat(path.parent.name.removeprefix("event_day="))
    assert fresh.read_day(day) and fresh.corrupt_lines == 1
    assert registry.pointers()["shadow"] is None  # nothing was registered


def test_imported_history_from_years_ago_trains_by_event_time(settings, registry) -> None:
    # A backfill: two days of history that happened in 2019, imported today.
    end = dt.datetime(2019, 6, 1, tzinfo=dt.UTC)
    log = EventLog(FolderStore(settings.origin_dir))
    log_messages(log, Population(shop_catalog(), 300, seed=5).history(12, end,
                                                                      dt.timedelta(days=2)))
    assert log.event_days()[0] == dt.date(2019, 5, 30)
    report = run_training(log, shop_catalog(), registry, settings.lateness_s,
                          since=end - dt.timedelta(days=3), until=end + dt.timedelta(hours=1))
    assert report.groups["train"] > 100 and registry.pointers()["shadow"] == report.version
    # a window with nothing in it says what the log does hold
    with pytest.raises(ModelError, match=r"no events in the log from 2020-01-01 to 2020-01-30 "
                                         r"by event time; the log holds events from "
                                         r"2019-05-30 to 2019-05-31 \(2 days\)"):
        run_training(log, shop_catalog(), registry, settings.lateness_s, days=30,
                     until=dt.datetime(2020, 1, 31, tzinfo=dt.UTC))
    # events in the window's days, but no views inside the window itself
    last = max(dt.datetime.fromisoformat(m["timestamp"])
               for m in log.read_days(dt.date(2019, 5, 31), dt.date(2019, 5, 31)))
    with pytest.raises(ModelError, match=r"no slates .* by event time: [0-9,]+ views were "
                                         r"read, from 2019-05-3"):
        run_training(log, shop_catalog(), registry, settings.lateness_s,
                     since=last + dt.timedelta(seconds=1), until=last + dt.timedelta(seconds=2))


def test_single_variant_placement_is_a_documented_skip(redis: Redis, settings) -> None:
    write_catalog(redis, {"solo": ("only", {"only": {"category": "x"}}),
                          "hero": SHOP["hero"]})
    catalog = Catalog.from_bytes(redis.get(MANIFEST_KEY))
    events, _ = parse_log(as_logged(Population(catalog, 40, seed=2).history(
        5, END, dt.timedelta(hours=6))))
    examples = build_examples(events, catalog, settings.lateness_s)
    assert examples.skipped.get("single variant shown", 0) > 0
    assert set(examples.group_placement) == {"hero"}


def test_users_below_the_cold_start_threshold_are_ranked_by_trending(bed) -> None:
    """The card's threshold decides who gets trending instead of the trees: users with
    fewer engaged variants than it (u_history = log1p of their count)."""
    _, text, card = bed
    ranker = LightGBMRanker.from_card("v", text, {**card, "cold_start": {
        "half_life_days": 7, "below_history": 10}})
    rows = probe_rows()
    rows[:, COLUMN["u_history"]] = np.log1p(np.arange(len(rows)) % 20)
    trend = rows[:, COLUMN["trend_7d"]]
    scores = ranker.score(rows)
    little = np.arange(len(rows)) % 20 < 10
    assert np.array_equal(scores[little], trend[little])
    trees = ranker._predict_lightgbm(ranker.spec.model_rows(rows))
    assert np.array_equal(scores[~little], trees[~little])
    ranker.cold_start_below = 1  # the default: only users with no history at all
    assert np.array_equal(ranker.score(rows) == trend, (np.arange(len(rows)) % 20 == 0)
                          | (trees == trend))


def test_a_one_slot_placement_learns_from_session_starts(tmp_path) -> None:
    # A hero banner shows one variant at a time: no slate has two, so the logged slates
    # teach nothing; the session starts (and what was clicked after them) do.
    settings = Settings(origin=f"file://{tmp_path}")
    registry = Registry(FolderStore(tmp_path))
    hero = Catalog.from_document({"format": 1, "rev": 1, "placements": {"hero": {
        "default": "h0", "variants": {
            f"h{i}": {"url": f"https://cdn.test/content/hero/variant-h{i}.0123abcd.json",
                      "category": f"look-{i % 4}"} for i in range(12)}}}})
    log = log_population(settings, Population(hero, 4000, seed=8), 40, 6, slate_size=1,
                         sessions=True)
    report = run_training(log, hero, registry, settings.lateness_s, days=7,
                          until=END + dt.timedelta(minutes=5))
    assert report.skipped["single variant shown"] > 10_000
    assert report.primary == "s_ndcg@5" and report.comparison is not None
    candidate, production = (e.metrics for e in report.evaluations[:2])
    assert candidate["s_hit@1"] > production["s_hit@1"], report.evaluations
    assert report.comparison.low > 0, report.comparison  # beats the baseline ranker
    # every test session start in one bucket of history, each with its intervals
    assert sum(b["groups"] for b in report.by_history.values()) == report.comparison.groups
    # the threshold below which trending ranks instead was chosen on the validation window
    assert registry.load(report.version)[1]["cold_start"]["below_history"] in BELOW
