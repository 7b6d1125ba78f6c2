"""The dashboard in a real browser (Debian's chromium, headless, driven by Playwright): the
page signs in with the operator token, shows the figures `GET /v1/dashboard` computed,
re-renders when the data changes, draws its plots with plotly, renders a rollout analysis
(and "no analysis yet"), escapes what comes from data, and logs no console error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from redis import Redis

from .dashboard_bed import (
    AUTH,
    TOKEN,
    DashboardBed,
    experiment,
    register_models,
    start_bed,
    write_experiment,
)

TIMEOUT_MS = 15_000
ROLLOUT = "rollout-m20261204-b"


def analysis_doc(start: dt.datetime = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC),
                 first_reason: str = "<img src=x onerror=alert(1)> started by operator"
                 ) -> dict[str, Any]:
    """A rollout analysis in the shape the page renders (experiments_panel.py)."""
    lift = [{"at": (start + dt.timedelta(minutes=20 * i)).isoformat(), "value": v,
             "low": v - w, "high": v + w}
            for i, (v, w) in enumerate([(0.09, 0.2), (0.05, 0.11), (0.061, 0.07),
                                        (0.058, 0.05)])]
    return {"arms": {"control": {"exposures": 48210, "users": 20114, "click_through": 0.0412},
                     "treatment": {"exposures": 4967, "users": 2071, "click_through": 0.0436}},
            "lift": lift, "lift_now": {"value": 0.058, "low": 0.008, "high": 0.108},
            "srm": {"p_value": 0.000213, "mismatch": True},
            "guardrails": [{"metric": "click_through", "max_drop": 0.05, "lift": 0.058,
                            "low": -0.031, "high": 0.152, "breached": False}],
            "history": [{"at": lift[0]["at"], "action": "start", "share": 1.0,
                         "reason": first_reason},
                        {"at": lift[2]["at"], "action": "advance", "share": 5.0,
                         "reason": "gate passed: 1,000 exposures per arm"}]}


@pytest.fixture
def bed(served_example, serve_app, redis: Redis) -> DashboardBed:
    analyses = {ROLLOUT: analysis_doc()}

    async def analyse(client: Any, exp: Any) -> dict[str, Any] | None:
        return analyses.get(exp.id)

    settings, edge = served_example
    bed = start_bed(settings, edge, serve_app, redis, analyse=analyse, refresh_s=0.5)
    register_models(bed.registry)
    write_experiment(redis, experiment())
    bed.traffic("browser", 24)
    return bed


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    yield page, errors
    context.close()


def sign_in(page: Page, base: str, token: str = TOKEN) -> None:
    page.goto(f"{base}/dashboard")
    expect(page.locator("#sign-in")).to_be_visible()
    page.fill("#token", token)
    page.click("#token-form button[type=submit]")


def data(bed: DashboardBed) -> dict[str, Any]:
    return httpx.get(f"{bed.api}/v1/dashboard", headers=AUTH).json()


def test_dashboard_shows_what_the_api_computed_and_updates(bed, page) -> None:
    page, errors = page
    sign_in(page, bed.api)
    expect(page.locator("#panels")).to_be_visible()
    doc = data(bed)
    edge = {a["source"]: a["count"] for a in doc["edge"]["answers"]}
    expect(page.locator("#edge-total")).to_have_text(f"{doc['edge']['total']:,.0f}")
    for source in ("decision", "no-decision", "no-user"):
        expect(page.locator(f'#edge-answers tr[data-source="{source}"] [data-field=count]')
               ).to_have_text(f"{edge[source]:,.0f}")
    shadow = doc["models"]["shadow"]
    expect(page.locator('[data-model=shadow] [data-field=version]')).to_have_text(
        shadow["version"])
    expect(page.locator('[data-model=shadow] tr[data-metric="ndcg@1"] [data-field=value]')
           ).to_have_text(f"{shadow['metrics']['ndcg@1']:.4f}")
    expect(page.locator("#pointer-log tbody tr")).to_have_count(len(doc["models"]["log"]))
    hero = next(p for p in doc["placements"]["items"] if p["placement"] == "hero")
    top = hero["top"][0]
    flag = doc["placements"]["flagged"]["items"][0]
    expect(page.locator(f'#flags tr[data-flag="hero/{flag["variant"]}"] td').nth(3)).to_have_text(
        f"{flag['expected_clicks']:.1f}")
    row = page.locator(f'[data-placement=hero] tr[data-variant="{top["variant"]}"]')
    expect(row.locator("[data-field=clicks]")).to_have_text(f"{top['clicks']:,.0f}")
    p99 = doc["freshness"]["since_start"]["p99_s"]
    expect(page.locator("#freshness-p99 ")).to_have_text(f"{1000 * p99:.1f} ms")
    experiment_box = page.locator(f'[data-experiment="{ROLLOUT}"]')
    expect(experiment_box.locator("[data-field=share]")).to_have_text("5 %")
    expect(experiment_box.locator(".steps .step.current")).to_have_text("5 %")
    expect(experiment_box.locator(".steps .step.done")).to_have_count(1)

    # the data change; the page follows on its own
    write_experiment(bed.redis, experiment(id="rollout-next", name="next candidate",
                                           status="shadow", step_index=0))
    bed.traffic("later", 8, seed=2)
    after = data(bed)
    assert after["edge"]["total"] > doc["edge"]["total"]
    expect(page.locator('[data-experiment="rollout-next"] [data-field=analysis]')).to_have_text(
        "No analysis yet.")
    expect(page.locator("#edge-total")).to_have_text(f"{after['edge']['total']:,.0f}")

    plots = page.locator(".js-plotly-plot")
    expect(plots).to_have_count(5)  # lift, models, edge, freshness, placements
    for i in range(5):
        box = plots.nth(i).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 80
    assert page.evaluate("document.querySelector('[data-plot=edge]').data[0].y") == [
        a["count"] for a in after["edge"]["answers"]]
    assert errors == []


def test_rollout_analysis_is_rendered_with_its_interval_band(bed, page) -> None:
    page, errors = page
    sign_in(page, bed.api)
    analysis = next(x for x in data(bed)["experiments"] if x["id"] == ROLLOUT)["analysis"]
    assert analysis == analysis_doc()
    box = page.locator(f'[data-experiment="{ROLLOUT}"]')
    srm = box.locator("[data-field=srm]")
    expect(srm).to_contain_text("mismatch")
    expect(srm).to_contain_text("p = 0.000213")
    expect(box.locator('tr[data-arm=treatment] [data-field=exposures]')).to_have_text("4,967")
    expect(box.locator('tr[data-arm=control] [data-field=click_through]')).to_have_text("0.0412")
    expect(box.locator("[data-field=lift-now]")).to_have_text("Lift now: +5.80 % [+0.80, +10.80] %")
    guardrail = box.locator('[data-field=guardrails] tr[data-guardrail="click_through"]')
    expect(guardrail).to_contain_text("holds")
    expect(guardrail.locator("td").nth(3)).to_have_text("[-3.10, +15.20] %")
    history = box.locator("[data-field=history] tbody tr")
    expect(history).to_have_count(2)
    expect(history.first.locator("td").nth(3)).to_have_text(
        analysis["history"][0]["reason"])  # shown as text, not markup
    assert box.locator("img").count() == 0
    lift = box.locator(f'[data-plot="lift:{ROLLOUT}"]')
    expect(lift).to_have_class("plot js-plotly-plot")
    traces = lift.evaluate("div => div.data.map(t => ({y: t.y, fill: t.fill || null}))")
    assert traces == [{"y": [p["high"] for p in analysis["lift"]], "fill": None},
                      {"y": [p["low"] for p in analysis["lift"]], "fill": "tonexty"},
                      {"y": [p["value"] for p in analysis["lift"]], "fill": None}]
    fills = lift.evaluate("div => [...div.querySelectorAll('path.js-fill')]"
                          ".map(p => (p.getAttribute('d') || '').length)")
    assert max(fills) > 20  # the band is drawn
    assert errors == []


def test_a_refused_token_brings_the_sign_in_back(bed, page) -> None:
    page, errors = page
    sign_in(page, bed.api, token="not-the-admin-token-at-all")
    expect(page.locator("#sign-in-error")).to_have_text("the admin token does not match")
    expect(page.locator("#panels")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    # the browser reports the refused fetch (a 401) and nothing else
    assert [e for e in errors if "401" not in e] == []
    sign_in(page, bed.api)
    expect(page.locator("#panels")).to_be_visible()
    assert "token" not in page.url and TOKEN not in page.url
