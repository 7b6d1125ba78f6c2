"""The dashboard in a real browser (Debian's chromium, headless, driven by Playwright): the
page signs in with the operator token, shows the figures `GET /v1/dashboard` computed,
re-renders when the data changes, draws its plots with plotly, renders a rollout analysis
(and "no analysis yet"), escapes what comes from data, and logs no console error."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from decision_worker.ranking.arm_counters import CounterChange, apply_changes

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


def arm(exposures: int, users: int, click_through: float, conversion: float
        ) -> dict[str, Any]:
    """One arm's figures as arm_figures.py gives them (intervals of ± 10 %, made up)."""
    return {"users": users, "exposures": exposures, "clicks": round(click_through * exposures),
            "click_through": click_through, "low": 0.9 * click_through,
            "high": 1.1 * click_through, "conversions": round(conversion * exposures),
            "conversion_rate": conversion, "conversion_low": 0.9 * conversion,
            "conversion_high": 1.1 * conversion}


def analysis_doc(start: dt.datetime = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC),
                 first_reason: str = "<img src=x onerror=alert(1)> started by operator"
                 ) -> dict[str, Any]:
    """A rollout analysis in the shape the page renders (experiments_panel.py)."""
    lift = [{"at": (start + dt.timedelta(minutes=20 * i)).isoformat(), "value": v,
             "low": v - w, "high": v + w}
            for i, (v, w) in enumerate([(0.09, 0.2), (0.05, 0.11), (0.061, 0.07),
                                        (0.058, 0.05)])]
    return {"arms": {"control": arm(48210, 20114, 0.0412, 0.0061),
                     "treatment": arm(4967, 2071, 0.0436, 0.0049)},
            "conversion_lift_now": {"value": -0.197, "low": -0.38, "high": 0.04},
            "placements": {
                "cta": {"arms": {"control": arm(20010, 9870, 0.0301, 0.0102),
                                 "treatment": arm(2015, 1003, 0.0323, 0.0089)},
                        "lift_now": {"value": 0.073, "low": -0.09, "high": 0.26},
                        "conversion_lift_now": None},
                "hero": {"arms": {"control": arm(28200, 14002, 0.0491, 0.0026),
                                  "treatment": arm(2952, 1460, 0.0518, 0.0021)},
                         "lift_now": {"value": 0.055, "low": -0.07, "high": 0.19},
                         "conversion_lift_now": {"value": -0.19, "low": -0.5, "high": 0.3}}},
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
    write_experiment(bed.redis, experiment(id="rollout-done", name="done", status="complete",
                                           step_index=4, placements=("email-header",)))
    expect(page.locator('[data-experiment="rollout-done"] [data-field=share]')).to_have_text(
        "100 % (production)")
    expect(page.locator("#edge-total")).to_have_text(f"{after['edge']['total']:,.0f}")

    plots = page.locator(".js-plotly-plot")
    # lift, the rollout's click-through and conversion per placement, models, edge,
    # freshness, placements
    expect(plots).to_have_count(7)
    for i in range(7):
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
    expect(box.locator('[data-field=arms] tr[data-scope=all][data-arm=treatment] '
                       '[data-field=exposures]')).to_have_text("4,967")
    control = box.locator('[data-field=arms] tr[data-scope=all][data-arm=control]')
    expect(control.locator("[data-field=click_through]")).to_have_text("4.12 %")
    expect(control.locator("[data-field=click_through_interval]")).to_have_text(
        "[3.71, 4.53] %")
    expect(control.locator("[data-field=conversions]")).to_have_text("294")
    expect(control.locator("[data-field=conversion_rate]")).to_have_text("0.61 %")
    hero = box.locator('[data-field=arms] tr[data-scope=hero][data-arm=treatment]')
    expect(hero.locator("[data-field=users]")).to_have_text("1,460")
    expect(hero.locator("[data-field=conversion_interval]")).to_have_text("[0.19, 0.23] %")
    expect(box.locator("[data-field=arms] tbody tr")).to_have_count(6)  # 3 scopes × 2 arms
    expect(box.locator("[data-field=lift-now]")).to_have_text("Lift now: +5.80 % [+0.80, +10.80] %")
    expect(box.locator("[data-field=conversion-lift-now]")).to_have_text(
        "Conversion lift now: -19.70 % [-38.00, +4.00] %")
    lifts = box.locator("[data-field=lifts]")
    expect(lifts.locator("tr[data-scope=hero] td")).to_have_text(
        ["hero", "+5.50 %", "[-7.00, +19.00] %", "-19.00 %", "[-50.00, +30.00] %"])
    expect(lifts.locator("tr[data-scope=cta] td").nth(4)).to_have_text("not yet measurable")
    rates = box.locator(f'[data-plot="conversion_rate:{ROLLOUT}"]')
    expect(rates).to_have_class("plot js-plotly-plot")
    assert rates.evaluate("div => div.data.map(t => [t.name, t.x, t.y])") == [
        [name, ["cta", "hero"], [analysis["placements"][p]["arms"][name]["conversion_rate"]
                                 for p in ("cta", "hero")]] for name in ("control", "treatment")]
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


def count_in_a_thread(redis_url: str, changes: list[CounterChange]) -> None:
    """The worker's counter script (Playwright's sync API keeps an event loop here)."""
    async def go() -> None:
        client = AsyncRedis.from_url(redis_url)
        await apply_changes(client, changes)
        await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()


def test_rates_per_placement_are_the_ones_the_arm_counters_give(
        served_example, serve_app, redis: Redis, page) -> None:
    page, errors = page
    settings, edge = served_example
    bed = start_bed(settings, edge, serve_app, redis, analyse=None)  # the real analysis
    rollout = experiment()
    write_experiment(redis, rollout)
    count_in_a_thread(settings.redis_url, [
        CounterChange(rollout.id, 1, arm, f"{arm}-{i}", placement, exposures=1 + i % 4,
                      clicks=int(i % (3 if arm == "treatment" else 4) == 0),
                      conversions=int(i % (9 if placement == "hero" else 13) == 0))
        for arm in ("control", "treatment") for placement in ("hero", "cta")
        for i in range(300)])
    sign_in(page, bed.api)
    analysis = next(x for x in data(bed)["experiments"] if x["id"] == rollout.id)["analysis"]
    assert analysis["placements"]["hero"]["arms"]["treatment"]["conversions"] == 34
    assert analysis["placements"]["cta"]["arms"]["control"]["users"] == 300
    box = page.locator(f'[data-experiment="{rollout.id}"]')
    for scope, figures in [("all", analysis), *analysis["placements"].items()]:
        for name, f in figures["arms"].items():
            row = box.locator(f'[data-field=arms] tr[data-scope="{scope}"][data-arm={name}]')
            expect(row.locator("[data-field=users]")).to_have_text(f"{f['users']:,}")
            expect(row.locator("[data-field=conversions]")).to_have_text(
                f"{f['conversions']:,}")
            expect(row.locator("[data-field=click_through]")).to_have_text(
                f"{100 * f['click_through']:.2f} %")
            expect(row.locator("[data-field=conversion_interval]")).to_have_text(
                f"[{100 * f['conversion_low']:.2f}, {100 * f['conversion_high']:.2f}] %")
        lift = figures["lift_now"]
        expect(box.locator(f'[data-field=lifts] tr[data-scope="{scope}"] td').nth(1)
               ).to_have_text(f"{100 * lift['value']:+.2f} %")
    clicks = box.locator(f'[data-plot="click_through:{rollout.id}"]')
    expect(clicks).to_have_class("plot js-plotly-plot")
    assert clicks.evaluate("div => div.data.map(t => t.y)") == [
        [analysis["placements"][p]["arms"][name]["click_through"] for p in ("cta", "hero")]
        for name in ("control", "treatment")]
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
