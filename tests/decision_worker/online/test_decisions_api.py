"""Reading back what was decided: `GET /v1/decisions/{user}` and `edgepick explain`, with
why: the first slot's exploration probability and the features that moved its score."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import pytest

from decision_worker.api import create_api
from decision_worker.ingest.event_log import EventLog
from decision_worker.keys import why_key
from decision_worker.learning.pipeline import run_training
from decision_worker.learning.registry import Registry
from decision_worker.learning.synthetic import Population, as_logged, log_messages
from decision_worker.online.pinning import pin
from decision_worker.ranking.contributions import Explainer
from decision_worker.ranking.feature_spec import FeatureSpec
from decision_worker.ranking.lgbm_ranker import LightGBMRanker
from decision_worker.ranking.why_record import WhyRecord, decode_whys
from edge_functions.bucketing import in_holdout
from edge_functions.keys import user_tag
from edgepick.explain_cli import explain, explanation_lines
from object_store.folder import FolderStore
from tests.conftest import Settings
from tests.decision_worker.conftest import NOW
from tests.decision_worker.learning.test_learning import END
from tests.decision_worker.test_agreement_fuzz import TEST_CATALOG

from .test_why_records import explore
from .test_worker import clicks_on, not_held, session

TOKEN = "admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(worker_settings: Settings, serve_app: Callable[..., str]) -> Iterator[httpx.Client]:
    settings = dataclasses.replace(worker_settings, admin_token=TOKEN)
    with httpx.Client(base_url=serve_app(create_api(settings))) as client:
        yield client


def test_decisions_read_back_as_the_edge_reads_them(api, ingest, drain, decision,
                                                    worker_settings) -> None:
    user, stranger = not_held("reader"), not_held("never-seen")
    ingest(clicks_on(user, "winter-camping", 2, "r") + [session(user, "s1")])
    drain()
    answer = api.get(f"/v1/decisions/{user}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    placements = answer.json()["placements"]
    hero = decision(user, "hero")
    assert hero is not None and placements["hero"] == {
        "ranked": list(hero.ranked), "model_version": hero.model_version, "arm": hero.arm,
        "decided_at": hero.decided_at,
        "exploration": {"propensity": 1.0, "explored": False},  # no policy: greedy
        # the baseline ranker's score is these two terms (ranker.py)
        "contributions": placements["hero"]["contributions"],
        "contributions_from": "baseline ranker's terms"}
    assert set(placements["hero"]["contributions"]) == {"ctx_trend_30d", "c_affinity"}
    assert set(placements) == {"hero", "cta"}  # every published placement
    only = api.get(f"/v1/decisions/{user}", params={"placement": "cta"}, headers=AUTH).json()
    assert list(only["placements"]) == ["cta"]
    assert api.get(f"/v1/decisions/{stranger}", headers=AUTH).json()["placements"]["hero"] is None
    # the CLI reads the same thing
    assert explain(worker_settings, user, "hero") == {"hero": placements["hero"]}
    line, first, moved = explanation_lines({"hero": placements["hero"]})
    assert line.startswith(f"hero: {', '.join(hero.ranked)}  (model {hero.model_version}, "
                           f"arm {hero.arm}, decided ")
    assert first == "  first slot: the ranker's choice, probability 1"
    assert moved.startswith("  moved by (baseline ranker's terms): c")


def test_decisions_route_refuses_strangers_and_names_bad_input(api) -> None:
    assert api.get("/v1/decisions/someone").status_code == 401
    assert api.get("/v1/decisions/someone", headers={"authorization": "Bearer x"}).status_code \
        == 401
    bad = api.get("/v1/decisions/someone", params={"placement": "Not An Id"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_identifier"
    unknown = api.get("/v1/decisions/someone", params={"placement": "nowhere"}, headers=AUTH)
    assert unknown.status_code == 404 and "nowhere" in unknown.json()["detail"]
    control = api.get("/v1/decisions/a%01b", headers=AUTH)
    assert control.status_code == 400 and "control characters" in control.json()["detail"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, Any]]:
    """A LightGBM ranker trained on a small synthetic population (about 4 s)."""
    origin = tmp_path_factory.mktemp("model")
    log = EventLog(FolderStore(origin))
    end = END  # a fixed time of day: the same model whatever the hour (test_learning.py)
    log_messages(log, as_logged(Population(TEST_CATALOG, 300, seed=5).history(
        12, end, dt.timedelta(days=3), sessions=True)))
    registry = Registry(FolderStore(origin))
    report = run_training(log, TEST_CATALOG, registry, 3 * 86_400, days=4,
                          until=end + dt.timedelta(minutes=5))
    text, card = registry.load(report.version)
    # Trending only for users with no history at all (training may choose a higher
    # threshold on this small window, which would explain the learned user by trending too)
    card = {**card, "cold_start": {**card["cold_start"], "below_history": 1}}
    return report.version, text, card


def test_a_learned_models_decisions_come_with_lightgbm_contributions(
        api, ingest, drain, redis, worker_settings, small_model) -> None:
    version, text, card = small_model
    assert worker_settings.origin_dir is not None
    Registry(FolderStore(worker_settings.origin_dir)).register(version, text, card)
    explore(redis, "hero", 0.3)
    user, newcomer = not_held("learned"), not_held("newcomer")
    ingest(clicks_on(user, "winter-camping", 2, "l") + [session(user, "l-s"),
                                                          session(newcomer, "n-s")])
    drain(ranker=LightGBMRanker.from_card(version, text, card))
    hero = api.get(f"/v1/decisions/{user}", headers=AUTH).json()["placements"]["hero"]
    assert hero["model_version"] == version
    why = decode_whys(redis.get(why_key(user_tag(worker_settings.key_secret_bytes,
                                                 user))))[1]["hero"]
    assert hero["exploration"] == {"propensity": why.propensity, "explored": why.explored}
    assert 0 < why.propensity < 1  # the placement explores: no choice is certain
    contributions = hero["contributions"]
    assert hero["contributions_from"] == "lightgbm pred_contrib (SHAP)"
    spec = FeatureSpec.from_card(card, version)  # the model's columns, from the stored row
    assert 1 <= len(contributions) <= 5 and set(contributions) <= set(spec.columns)
    sizes = [abs(v) for v in contributions.values()]
    assert sizes == sorted(sizes, reverse=True)  # the features that moved it most, first
    # LightGBM's own per-row contributions of the first variant's stored row
    expected = lgb.Booster(model_str=text).predict(
        spec.model_rows(np.array([why.features])), pred_contrib=True)[0]
    for name, value in contributions.items():
        assert value == pytest.approx(expected[spec.columns.index(name)], rel=1e-5, abs=1e-9)
    assert max(sizes) == pytest.approx(np.abs(expected[:-1]).max(), rel=1e-5)
    # a user without history is ranked by trending (the card's cold start): that column
    new = api.get(f"/v1/decisions/{newcomer}", headers=AUTH).json()["placements"]["hero"]
    half_life = card["cold_start"]["half_life_days"]
    assert list(new["contributions"]) == [f"trend_{half_life}d"]
    assert new["contributions_from"].startswith("cold start")
    # edgepick explain prints the same
    lines = explanation_lines(explain(worker_settings, user, "hero"))
    assert lines[1].startswith("  first slot: ") and f"{why.propensity:.4g}" in lines[1]
    top = next(iter(contributions))
    assert lines[2].startswith("  moved by (lightgbm pred_contrib (SHAP)): " + top)


def test_the_cold_start_threshold_is_read_from_the_stored_row_as_a_count(
        tmp_path, small_model) -> None:
    # The why-record keeps the row as float32: log1p(30) rounds below its float64 value, so
    # a user with exactly 30 variants engaged was once explained as "cold start".
    version, text, card = small_model
    registry = Registry(FolderStore(tmp_path))
    registry.register(version, text, {**card, "cold_start": {**card["cold_start"],
                                                             "below_history": 30}})
    features = FeatureSpec.from_card(card, version).row_features
    explainer = Explainer(registry)
    for engaged, cold in ((29, True), (30, False)):
        row = [0.0] * len(features)
        row[features.index("u_history")] = float(np.float32(np.log1p(engaged)))
        why = WhyRecord("v", 1.0, False, tuple(row))
        method = explainer.explain(version, "treatment", why).method
        assert method.startswith("cold start") == cold, (engaged, method)


def test_pinned_and_holdout_decisions_say_why_they_have_no_contributions(
        api, ingest, drain, redis, worker_settings) -> None:
    held = next(f"held-{i}" for i in range(1000) if in_holdout(f"held-{i}", 0.1))
    ingest([session(held, "h-s")])
    drain()
    hero = api.get(f"/v1/decisions/{held}", headers=AUTH).json()["placements"]["hero"]
    assert hero["arm"] == "holdout" and hero["contributions"] is None
    assert hero["exploration"] == {"propensity": 1.0, "explored": False}
    assert "the default by rule" in hero["contributions_from"]
    # a decision pinned over the worker's: its why-record no longer explains it
    previewer = not_held("previewer")
    ingest([session(previewer, "p-s", at=NOW - dt.timedelta(minutes=5))])
    drain()
    assert api.get(f"/v1/decisions/{previewer}", headers=AUTH).json()["placements"]["hero"][
        "exploration"] is not None
    pin(redis, worker_settings.key_secret_bytes, previewer, "hero", ["trail-running"], 60)
    pinned = api.get(f"/v1/decisions/{previewer}", headers=AUTH).json()["placements"]["hero"]
    assert pinned["arm"] == "pinned" and pinned["ranked"] == ["trail-running"]
    assert pinned["exploration"] is None and pinned["contributions"] is None
    assert "no why-record" in pinned["contributions_from"]
