"""The training report: the evaluation table, and NDCG@1 by user-history length as a grouped
bar chart (plotly, so cold-start quality is visible), rendered with jinja2 to one standalone
HTML file: plotly.js is inlined, the report opens offline and can be mailed as it is."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from decision_worker.learning.evaluation import HISTORY_BUCKETS, METRICS
from decision_worker.learning.pipeline import TrainingReport

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
CHART_ID = "ndcg-by-history"
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
{% if r.comparison %}<h2>Promotion</h2>
<p id="promotion">Promotion decides on {{ r.primary }}{% if r.primary != r.evaluated_on %}
(the first slot's click-through estimated off-policy from the decision log, doubly robust:
fair to both models where production made the decisions){% endif %}: candidate − production
{{ r.comparison.describe() }} (95 % interval, {{ r.comparison.groups }} groups of
{{ r.comparison.users }} users resampled); it may serve only if the lower bound is above
zero and no guardrail is breached (<code>edgepick promote</code>).</p>{% endif %}
<h2>Cold start</h2>
{{ chart }}
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


def _chart(report: TrainingReport) -> Markup:
    """NDCG@1 per history bucket, a bar per model: axes, titles, and a legend of its own
    below the plot (never over the bars); buckets a model has no slate in are left out."""
    buckets = [label for *_, label in HISTORY_BUCKETS]
    figure = go.Figure()
    for m, evaluation in enumerate(report.evaluations):
        values = [evaluation.ndcg1_by_history.get(b, math.nan) for b in buckets]
        figure.add_bar(name=evaluation.name, x=buckets,
                       y=[None if math.isnan(v) else v for v in values],
                       marker_color=COLOURS[m % len(COLOURS)],
                       hovertemplate=f"{evaluation.name}, %{{x}}: %{{y:.3f}}<extra></extra>")
    figure.update_layout(
        barmode="group", height=380, margin={"l": 60, "r": 20, "t": 50, "b": 110},
        title={"text": "NDCG@1 by the user's history length", "x": 0},
        xaxis={"title": {"text": "events the user had before the slate"}},
        yaxis={"title": {"text": "NDCG@1"}, "rangemode": "tozero"},
        legend={"orientation": "h", "x": 0, "y": -0.3, "title": {"text": "model "}},
        font={"family": "system-ui, sans-serif"}, plot_bgcolor="#fff")
    figure.update_yaxes(gridcolor="#e5e5e5")
    # plotly writes the figure as JSON inside its own script: data, not markup.
    return Markup(figure.to_html(full_html=False, include_plotlyjs=True, div_id=CHART_ID,
                                 config={"displaylogo": False, "responsive": True}))
