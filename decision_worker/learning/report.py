"""The training report: the evaluation table, and NDCG@1 by user-history length as a small
SVG bar chart (so cold-start quality is visible), rendered with jinja2 to one HTML file."""

from __future__ import annotations

import math
from pathlib import Path

from jinja2 import Environment, select_autoescape

from decision_worker.learning.evaluation import HISTORY_BUCKETS, METRICS
from decision_worker.learning.pipeline import TrainingReport

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgepick model {{ r.version }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}.best{font-weight:bold}</style></head><body>
<h1>Candidate {{ r.version }}</h1>
<p>Window {{ r.window[0] }} → {{ r.window[1] }}; {{ r.messages }} messages
({{ r.invalid }} invalid, {{ r.corrupt_lines }} unreadable lines);
slates: {{ r.groups.train }} train, {{ r.groups.valid }} validation (early stopping),
{{ r.groups.test }} evaluation (the latest part of the window); {{ r.rounds }} trees.
Production at training time: {{ r.production_version or "the baseline ranker" }}.</p>
<h2>Offline evaluation</h2>
<table><tr><th>model</th>{% for m in metrics %}<th>{{ m }}</th>{% endfor %}</tr>
{% for e in r.evaluations %}<tr><td>{{ e.name }}</td>{% for m in metrics %}
<td{% if best[m] == e.name %} class="best"{% endif %}>{{ "%.4f"|format(e.metrics[m]) }}</td>
{% endfor %}</tr>{% endfor %}</table>
<p>NDCG@k over evaluation slates with a click (ties in random order); AUC of click
prediction over all shown rows; coverage = share of the catalog some user would be shown
first; diversity = entropy (bits) of the categories shown first.</p>
<h2>NDCG@1 by the user's history length</h2>
<svg width="{{ chart.width }}" height="{{ chart.height }}" role="img"
 aria-label="NDCG@1 by history length">
{% for bar in chart.bars %}<rect x="{{ bar.x }}" y="{{ bar.y }}" width="{{ bar.w }}"
 height="{{ bar.h }}" fill="{{ bar.colour }}"><title>{{ bar.title }}</title></rect>{% endfor %}
{% for label in chart.labels %}<text x="{{ label.x }}" y="{{ chart.height - 5 }}"
 text-anchor="middle">{{ label.text }}</text>{% endfor %}
{% for item in chart.legend %}<rect x="{{ item.x }}" y="5" width="10" height="10"
 fill="{{ item.colour }}"/><text x="{{ item.x + 14 }}" y="14">{{ item.text }}</text>
{% endfor %}</svg>
{% if r.skipped %}<h2>Skipped</h2><ul>{% for k, v in r.skipped.items() %}
<li>{{ k }}: {{ v }}</li>{% endfor %}</ul>{% endif %}
<h2>Features</h2><p>Read ({{ r.columns | length }}): {{ r.columns | join(", ") }}</p>
{% if r.dropped %}<p>Not read:</p><ul>{% for k, v in r.dropped.items() %}
<li>{{ k }}: {{ v }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def write_html(report: TrainingReport, path: Path) -> Path:
    env = Environment(autoescape=select_autoescape(default=True))
    best = {}
    for metric in METRICS:
        values = [(e.metrics[metric], e.name) for e in report.evaluations
                  if not math.isnan(e.metrics[metric])]
        best[metric] = max(values)[1] if values else None
    html = env.from_string(TEMPLATE).render(r=report, metrics=METRICS, best=best,
                                            chart=_chart(report))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _chart(report: TrainingReport) -> dict[str, object]:
    width, height, top, bottom = 640, 260, 30, 25
    buckets = [label for *_, label in HISTORY_BUCKETS]
    slot = (width - 40) / len(buckets)
    bar_w = slot / (len(report.evaluations) + 1)
    bars, labels = [], []
    for b, bucket in enumerate(buckets):
        labels.append({"x": 20 + slot * b + slot / 2, "text": bucket})
        for m, evaluation in enumerate(report.evaluations):
            value = evaluation.ndcg1_by_history.get(bucket, float("nan"))
            if math.isnan(value):
                continue
            h = value * (height - top - bottom)
            bars.append({"x": 20 + slot * b + bar_w * (m + 0.5), "y": height - bottom - h,
                         "w": bar_w * 0.9, "h": h, "colour": COLOURS[m % len(COLOURS)],
                         "title": f"{evaluation.name}, {bucket}: {value:.3f}"})
    legend = [{"x": 20 + 170 * m, "colour": COLOURS[m % len(COLOURS)], "text": e.name}
              for m, e in enumerate(report.evaluations)]
    return {"width": width, "height": height, "bars": bars, "labels": labels,
            "legend": legend}
