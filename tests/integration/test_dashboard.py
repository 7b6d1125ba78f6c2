"""The dashboard's data route against the real parts: what `GET /v1/dashboard` reports is
what the registry, the manifest and counts in Redis, the edge's and the worker's metrics
say; it refuses strangers; plotly.js is served from the package, cached and offline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
from redis import Redis

from decision_worker.api import create_api
from decision_worker.dashboard.routes import plotly_js
from decision_worker.keys import EXPERIMENTS, STATS_KEY, arm_totals_key
from decision_worker.ranking.model_registry import ModelRegistry
from edge_functions.keys import MANIFEST_KEY
from object_store.folder import FolderStore

from .dashboard_bed import (
    AUTH,
    FLAG,
    TOKEN,
    DashboardBed,
    experiment,
    register_models,
    start_bed,
)


@pytest.fixture
def bed(served_example, serve_app, redis: Redis) -> DashboardBed:
    settings, edge = served_example
    return start_bed(settings, edge, serve_app, redis)


def dashboard(bed: DashboardBed) -> dict:
    answer = httpx.get(f"{bed.api}/v1/dashboard", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    return answer.json()


def test_models_panel_reads_the_registry_pointers_cards_and_log(bed) -> None:
    empty = dashboard(bed)
    assert empty["models"] == {"error": None, "production": None, "shadow": None, "log": []}
    assert empty["placements"]["flagged"] is None
    production, shadow = register_models(bed.registry)
    doc = dashboard(bed)
    models = doc["models"]
    # flagged for review by production's card, as `edgepick flags` reads them
    assert doc["placements"]["flagged"] == {"version": production, "items": [FLAG]}
    assert models["production"]["version"] == production
    assert models["shadow"]["version"] == shadow
    card = ModelRegistry(FolderStore(bed.settings.origin_dir)).card(shadow)
    assert models["shadow"]["metrics"]["ndcg@1"] == card["metrics"]["candidate"]["ndcg@1"]
    assert models["shadow"]["against"]["auc"] == card["metrics"]["production"]["auc"]
    assert models["shadow"]["comparison"]["low"] == card["comparison"]["low"]
    assert models["shadow"]["evaluated_against"] == production
    assert [(e["pointer"], e["version"]) for e in models["log"]] == [
        ("shadow", shadow), ("production", production), ("shadow", production)]
    assert models["log"][1]["why"].startswith("forced: first model")
    bed.registry.rollback()
    after = dashboard(bed)["models"]
    assert after["production"] is None and after["log"][0]["why"] == "rollback"


def test_edge_panel_counts_answers_by_source_and_their_rate(bed) -> None:
    bed.traffic("edge", 20)
    first = dashboard(bed)["edge"]
    scraped = httpx.get(f"{bed.edge}/metrics").text
    counts = {a["source"]: a["count"] for a in first["answers"]}
    for source in ("decision", "no-user", "no-decision"):
        assert f'edgepick_edge_answers_total{{source="{source}"}} {counts[source]}' in scraped
    assert counts["decision"] > 0 and counts["no-user"] == 20 // 8
    assert first["total"] == sum(counts.values())
    assert all(a["rate_per_s"] is None for a in first["answers"])  # no earlier scrape
    for _ in range(7):
        httpx.get(f"{bed.edge}/p/hero")
    second = {a["source"]: a for a in dashboard(bed)["edge"]["answers"]}
    assert second["no-user"]["count"] == counts["no-user"] + 7
    assert second["no-user"]["rate_per_s"] > 0 and second["decision"]["rate_per_s"] == 0


def test_freshness_panel_reads_the_worker_histogram(bed) -> None:
    bed.traffic("fresh", 12)
    fresh = dashboard(bed)["freshness"]
    histogram = bed.worker_metrics.freshness.collect()[0]
    total = next(s.value for s in histogram.samples if s.name.endswith("_count"))
    assert fresh["error"] is None and fresh["since_start"]["count"] == total > 0
    assert 0 < fresh["since_start"]["p50_s"] <= fresh["since_start"]["p99_s"] < 30
    assert fresh["since_last"] is None  # the first scrape has nothing to compare with
    assert fresh["decisions"] == bed.worker_metrics.decisions._value.get()
    bed.traffic("fresher", 4, seed=1)
    again = dashboard(bed)["freshness"]
    assert 0 < again["since_last"]["count"] < again["since_start"]["count"]


def test_placements_panel_ranks_variants_by_clicks_from_the_worker_counts(bed) -> None:
    bed.traffic("place", 30)
    panel = dashboard(bed)["placements"]
    assert panel["error"] is None and panel["manifest_rev"] == int(bed.redis.get(
        "{ep:manifest}:rev"))
    hero = next(p for p in panel["items"] if p["placement"] == "hero")
    stats = {k.decode(): float(v) for k, v in bed.redis.hgetall(STATS_KEY).items()}
    top = hero["top"][0]
    assert top["clicks"] == stats[f"click|hero/{top['variant']}"] > 0
    assert top["views"] == stats[f"view|hero/{top['variant']}"]
    assert [r["clicks"] for r in hero["top"]] == sorted((r["clicks"] for r in hero["top"]),
                                                        reverse=True)
    assert hero["views"] == sum(v for k, v in stats.items()
                                if k.startswith("view|hero/") and k.count("|") == 1)
    bed.redis.delete(MANIFEST_KEY)
    assert dashboard(bed)["placements"]["error"].startswith("no manifest in Redis")


def test_experiments_panel_lists_stored_experiments_with_an_analysis_hook(
        served_example, serve_app, redis) -> None:
    seen = []

    async def analyse(client, exp):
        seen.append(exp.id)
        return {"srm": {"p_value": 0.42, "mismatch": False}}

    settings, edge = served_example
    bed = start_bed(settings, edge, serve_app, redis, analyse=analyse)
    assert dashboard(bed)["experiments"] == []
    ramping = experiment()
    bed.redis.hset(EXPERIMENTS, ramping.id, ramping.dumps())
    bed.redis.hset(EXPERIMENTS, "broken", b"{not json")
    items = dashboard(bed)["experiments"]
    assert [i["id"] for i in items] == ["rollout-m20261204-b", "broken"]
    shown = items[0]
    assert shown["status"] == "ramping" and shown["share"] == 5.0 and shown["step_index"] == 1
    assert shown["steps"] == [1.0, 5.0, 20.0, 50.0, 100.0]
    assert shown["treatment_model"] == "m20261204-b" and shown["control_model"] == "m20261201-a"
    assert shown["analysis"] == {"srm": {"p_value": 0.42, "mismatch": False}}
    assert items[1]["error"].startswith("stored experiment does not load") and seen == [ramping.id]


def test_panels_without_a_source_say_so(settings, serve_app, redis) -> None:
    api = serve_app(create_api(dataclasses.replace(settings, admin_token=TOKEN)))
    doc = httpx.get(f"{api}/v1/dashboard", headers=AUTH).json()
    assert doc["edge"]["configured"] is False
    assert "EDGEPICK_EDGE_METRICS_URL is not set" in doc["edge"]["error"]
    assert "EDGEPICK_WORKER_METRICS_URL is not set" in doc["freshness"]["error"]
    assert doc["placements"]["error"].startswith("no manifest")
    redis.hset(EXPERIMENTS, "rollout-a", experiment(id="rollout-a").dumps())
    shown = httpx.get(f"{api}/v1/dashboard", headers=AUTH).json()["experiments"]
    # The rollouts' own analysis (the default): nothing counted yet, nothing recorded
    analysis = shown[0]["analysis"]
    assert [x["id"] for x in shown] == ["rollout-a"] and analysis["lift_now"] is None
    assert analysis["arms"]["treatment"]["users"] == analysis["arms"]["control"]["users"] == 0
    assert analysis["history"] == [] and analysis["srm"]["mismatch"] is False
    assert analysis["placements"] == {} and analysis["conversion_lift_now"] is None
    assert analysis["arms"]["control"]["conversions"] == 0
    assert analysis["arms"]["control"]["conversion_rate"] is None
    redis.hset(arm_totals_key("personalization", "all", "holdout"),
               mapping={"users": 2, "exposures": 5, "clicks": 1, "exposures_squared": 13,
                        "clicks_squared": 1, "exposures_times_clicks": 3})
    personal = httpx.get(f"{api}/v1/dashboard", headers=AUTH).json()["personalization"]
    assert personal["arms"]["holdout"]["users"] == 2 and personal["arms"]["holdout"][
        "click_through"] == 0.2
    assert personal["arms"]["treatment"]["users"] == 0 and personal["lift_now"] is None
    assert personal["arms"]["holdout"]["conversions"] == 0  # sums kept before conversions
    unreachable = dataclasses.replace(settings, admin_token=TOKEN,
                                      edge_metrics_url="http://127.0.0.1:9/metrics")
    api = serve_app(create_api(unreachable))
    edge = httpx.get(f"{api}/v1/dashboard", headers=AUTH).json()["edge"]
    assert edge["configured"] is True and edge["error"].startswith("unreachable: ")


def test_data_route_refuses_without_the_operator_token(bed, settings, serve_app) -> None:
    url = f"{bed.api}/v1/dashboard"
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = httpx.get(url, headers={"authorization": "Bearer not-the-admin-token"})
    assert wrong.status_code == 401
    assert httpx.get(url, params={"token": TOKEN}).status_code == 401  # never in a URL
    disabled = serve_app(create_api(settings))  # no EDGEPICK_ADMIN_TOKEN
    assert httpx.get(f"{disabled}/v1/dashboard", headers=AUTH).status_code == 403


def test_page_and_plotly_are_served_locally_with_caching(bed) -> None:
    page = httpx.get(f"{bed.api}/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    version, path = plotly_js()
    src = f"/dashboard/plotly-{version}.min.js"
    assert f'src="{src}"' in page.text and "cdn" not in page.text.lower()
    plain = httpx.get(f"{bed.api}{src}", headers={"accept-encoding": "identity"})
    assert plain.content == Path(path).read_bytes()
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    packed = httpx.get(f"{bed.api}{src}", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decoded it
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    for asset in ("dashboard.js", "dashboard.css"):
        assert f"/dashboard/static/{asset}?v=" in page.text
        assert httpx.get(f"{bed.api}/dashboard/static/{asset}").status_code == 200
    assert httpx.get(f"{bed.api}/dashboard/static/..%2Fdata.py").status_code == 404


def test_redis_down_is_a_503_to_retry(settings, serve_app, redis_process) -> None:
    settings = dataclasses.replace(settings, admin_token=TOKEN, redis_url=redis_process.url,
                                   api_timeout_s=0.5)
    api = serve_app(create_api(settings))
    assert httpx.get(f"{api}/v1/dashboard", headers=AUTH).status_code == 200
    redis_process.stop()
    down = httpx.get(f"{api}/v1/dashboard", headers=AUTH, timeout=10)
    assert down.status_code == 503 and down.headers["retry-after"] == "1"
    assert down.json()["error"] == "unavailable"
