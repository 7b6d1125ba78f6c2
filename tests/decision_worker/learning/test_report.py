"""The training report's chart, opened in a real browser from the file alone: plotly draws a
grouped bar chart with both axes titled, a legend clear of the bars, no bar for a bucket a
model had no slate in, nothing fetched from the network and no console error."""

from __future__ import annotations

import math
from pathlib import Path

from decision_worker.learning.evaluation import HISTORY_BUCKETS, METRICS, Evaluation
from decision_worker.learning.intervals import Interval
from decision_worker.learning.pipeline import TrainingReport
from decision_worker.learning.report import CHART_ID, write_html

BUCKETS = [label for *_, label in HISTORY_BUCKETS]


def report() -> TrainingReport:
    by_model = {"candidate": [0.31, 0.42, 0.47, 0.55], "production": [0.29, 0.38, 0.41, 0.5],
                "trending": [0.3, 0.33, 0.31, 0.3], "popularity": [math.nan, 0.28, 0.27, 0.26]}
    evaluations = [Evaluation(name, {m: 0.5 for m in METRICS}, dict(zip(BUCKETS, values,
                                                                        strict=True)))
                   for name, values in by_model.items()]
    return TrainingReport("lgbm-20261205-0400", ("2026-11-28", "2026-12-05"), 91_000, 3, 0,
                          {"train": 7000, "valid": 1000, "test": 2000}, {}, evaluations, 120,
                          primary="dr_ctr@1", comparison=Interval(0.031, 0.004, 0.06, 840, 300),
                          evaluated_on="s_ndcg@5",
                          offline_comparison=Interval(-0.12, -0.18, -0.07, 90, 80))


def test_report_says_what_promotion_decides_on(tmp_path: Path) -> None:
    html = write_html(report(), tmp_path / "report.html").read_text()
    promotion = html[html.index('<p id="promotion">'):]
    promotion = " ".join(promotion[:promotion.index("</p>")].split())
    assert "Promotion decides on dr_ctr@1 (the first slot's click-through estimated " \
           "off-policy" in promotion
    assert "candidate − production +0.0310 [+0.0040, +0.0600] (95 % interval, 840 groups " \
           "of 300 users resampled)" in promotion


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_report_chart_has_axes_a_clear_legend_and_works_offline(browser, tmp_path: Path
                                                                 ) -> None:
    path = write_html(report(), tmp_path / "report.html")
    html = path.read_text()
    assert "<script src=" not in html and "plotly.js v" in html  # inlined
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors: list[str] = []
    remote: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(
        ("file:", "data:", "blob:")) else None)
    try:
        page.goto(path.as_uri())
        chart = page.locator(f"#{CHART_ID}.js-plotly-plot")
        chart.wait_for()
        assert chart.locator(".xtitle").text_content() == "events the user had before the slate"
        assert chart.locator(".ytitle").text_content() == "NDCG@1"
        assert chart.locator(".legend .traces").count() == 4
        assert chart.locator(".xtick").all_text_contents() == BUCKETS
        bars = chart.locator(".barlayer .point path")
        heights = bars.evaluate_all("ps => ps.map(p => p.getBBox().height)")
        assert len([h for h in heights if h > 0]) == 15  # popularity has none for new users
        legend, plot_area = chart.locator(".legend").bounding_box(), \
            chart.locator(".bglayer .bg").bounding_box()
        assert legend and plot_area and not boxes_overlap(legend, plot_area)
        assert errors == [] and remote == []
    finally:
        page.close()
