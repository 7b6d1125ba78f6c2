// The operator dashboard: polls GET /v1/dashboard with the operator token and re-renders.
// Every figure from the data is put in the page as text (textContent), never as markup.
"use strict";

(() => {
  const TOKEN_KEY = "edgepick.adminToken";
  const HISTORY = 120; // polls kept for the freshness chart
  const PLOT_CONFIG = { displaylogo: false, responsive: true,
                        modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const SOURCE_COLOURS = { "decision": "#1a7f37", "holdout": "#6f42c1", "no-decision": "#8c959f",
                           "no-user": "#afb8c1", "not-eligible": "#bf8700",
                           "opted-out": "#57606a", "store-timeout": "#cf222e",
                           "store-error": "#a40e26", "circuit-open": "#fa4549",
                           "corrupt-record": "#e16f24" };
  const plots = new Map(); // key → its div, reused so that Plotly.react updates in place
  let pendingPlots = [];
  let freshnessHistory = [];
  let timer = null;

  // ---- building DOM ----------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // `numeric`: indexes of the columns that hold numbers (right-aligned)
  function table(headers, rows, attrs, numeric) {
    const isNum = new Set(numeric || []);
    for (const row of rows) {
      [...row.children].forEach((cell, i) => { if (isNum.has(i)) cell.classList.add("num"); });
    }
    return el("table", attrs || {},
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: isNum.has(i) && "num" },
        h)))),
      el("tbody", {}, rows));
  }

  function figure(label, value, attrs) {
    return el("div", { class: "figure" },
      el("div", Object.assign({ class: "value" }, attrs || {}), value),
      el("div", { class: "label" }, label));
  }

  function plot(key, data, layout) {
    let div = plots.get(key);
    if (!div) {
      div = el("div", { class: "plot", dataset: { plot: key } });
      plots.set(key, div);
    }
    const full = Object.assign({
      margin: { l: 60, r: 20, t: 36, b: 50 }, height: 260,
      font: { family: "system-ui, sans-serif", size: 12, color: "#1d2733" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      legend: { orientation: "h", x: 0, y: -0.25 },
    }, layout);
    pendingPlots.push(() => Plotly.react(div, data, full, PLOT_CONFIG));
    return div;
  }

  // ---- formatting ------------------------------------------------------------------
  const count = (n) => (n === null || n === undefined ? "–"
    : Math.round(n).toLocaleString("en-US"));
  const num = (x, digits) => (x === null || x === undefined ? "–" : x.toFixed(digits));
  const signed = (x, digits) => (x === null || x === undefined ? "–"
    : (x >= 0 ? "+" : "") + x.toFixed(digits));
  const pct = (x, digits) => (x === null || x === undefined ? "–"
    : (100 * x).toFixed(digits === undefined ? 2 : digits) + " %");
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return (1000 * s).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }
  const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC")
    : "–");

  // ---- panels ----------------------------------------------------------------------
  function problem(message) { return el("p", { class: "error" }, message); }

  function renderExperiments(items) {
    if (!items.length) {
      return [el("p", { class: "note", id: "no-experiments" },
        "No experiments yet: a rollout (edgepick rollout start MODEL) appears here.")];
    }
    return items.map((x) => (x.error ? el("div", { class: "experiment", dataset: { experiment: x.id } },
      el("h3", {}, x.id), problem(x.error)) : renderExperiment(x)));
  }

  function renderExperiment(x) {
    const steps = el("div", { class: "steps " + x.status, "aria-label": "steps" },
      x.steps.map((share, i) => el("div", {
        class: "step" + (i < x.step_index || x.status === "complete" ? " done" : "")
          + (i === x.step_index && x.status !== "complete" ? " current" : ""),
        title: "step " + (i + 1) }, share + " %")));
    const guardrails = x.guardrails.map((g) => g.metric + " ≤ −" + pct(g.max_drop, 0)).join(", ");
    return el("div", { class: "experiment", dataset: { experiment: x.id } },
      el("h3", {}, x.name, " ", el("span", { class: "badge " + x.status, dataset: { field: "status" } },
        x.status.replace("_", " "))),
      el("div", { class: "figures" },
        figure("treatment share now", x.status === "complete" ? "100 % (production)"
          : x.share + " %", { "data-field": "share" }),
        figure("step", (x.step_index + 1) + " of " + x.steps.length, { "data-field": "step" }),
        figure("treatment model", x.treatment_model, { "data-field": "treatment" }),
        figure("control model", x.control_model || "baseline ranker", { "data-field": "control" })),
      steps,
      el("p", { class: "note" }, "id ", x.id, " · placements: ",
        x.placements.length ? x.placements.join(", ") : "all",
        " · guardrails: ", guardrails || "none", " · started ", when(x.started_at),
        " · step started ", when(x.step_started_at)),
      renderAnalysis(x));
  }

  function renderAnalysis(x) {
    const a = x.analysis;
    if (!a) return el("p", { class: "note", dataset: { field: "analysis" } }, "No analysis yet.");
    const parts = [];
    if (a.srm) {
      parts.push(el("p", { dataset: { field: "srm" } }, "Sample ratio: ",
        el("span", { class: "badge " + (a.srm.mismatch ? "bad" : "good") },
          a.srm.mismatch ? "mismatch" : "as assigned"),
        " p = ", a.srm.p_value === null ? "–" : a.srm.p_value.toPrecision(3)));
    }
    for (const [key, field, label] of [["lift_now", "lift-now", "Lift now: "],
      ["conversion_lift_now", "conversion-lift-now", "Conversion lift now: "]]) {
      const lift = a[key];
      if (!lift) continue;
      parts.push(el("p", { dataset: { field } }, label,
        el("strong", {}, signed(100 * lift.value, 2) + " %"), " [",
        signed(100 * lift.low, 2), ", ", signed(100 * lift.high, 2), "] %"));
    }
    if (a.arms) parts.push(renderArms(a), renderLifts(a));
    const placed = Object.keys(a.placements || {});
    if (placed.length) {
      parts.push(el("div", { class: "grid2" },
        ratePlot(x.id, a, "click_through", "low", "high", "Click-through per placement"),
        ratePlot(x.id, a, "conversion_rate", "conversion_low", "conversion_high",
          "Conversion rate per placement")));
    }
    if (a.guardrails && a.guardrails.length) parts.push(renderGuardrails(a.guardrails));
    if (a.lift && a.lift.length) parts.push(liftPlot(x.id, a.lift));
    if (a.history && a.history.length) {
      parts.push(el("h3", {}, "History"), table(["at", "action", "share", "reason"],
        a.history.map((h) => el("tr", {}, el("td", {}, when(h.at)), el("td", {}, h.action),
          el("td", {}, h.share === null || h.share === undefined ? "–" : h.share + " %"),
          el("td", {}, h.reason || ""))), { dataset: { field: "history" } }, [2]));
    }
    return el("div", { class: "analysis", dataset: { field: "analysis" } }, parts);
  }

  // The analysis's scopes: every placement together ("all"), then each placement
  function scopes(a) {
    return [["all", a], ...Object.entries(a.placements || {})];
  }

  const interval = (low, high) => (low === null || low === undefined ? "–"
    : "[" + num(100 * low, 2) + ", " + num(100 * high, 2) + "] %");

  function renderArms(a) {
    const rows = scopes(a).flatMap(([scope, s]) => Object.entries(s.arms).map(([arm, f]) =>
      el("tr", { dataset: { scope, arm } },
        el("td", {}, scope === "all" ? "all placements" : scope), el("td", {}, arm),
        el("td", { dataset: { field: "users" } }, count(f.users)),
        el("td", { dataset: { field: "exposures" } }, count(f.exposures)),
        el("td", { dataset: { field: "clicks" } }, count(f.clicks)),
        el("td", { dataset: { field: "click_through" } }, pct(f.click_through)),
        el("td", { dataset: { field: "click_through_interval" } }, interval(f.low, f.high)),
        el("td", { dataset: { field: "conversions" } }, count(f.conversions)),
        el("td", { dataset: { field: "conversion_rate" } }, pct(f.conversion_rate)),
        el("td", { dataset: { field: "conversion_interval" } },
          interval(f.conversion_low, f.conversion_high)))));
    return table(["placement", "arm", "users", "exposures", "clicks", "click-through",
      "95 % interval", "conversions", "conversion rate", "95 % interval"], rows,
    { dataset: { field: "arms" } }, [2, 3, 4, 5, 6, 7, 8, 9]);
  }

  // The second arm (treatment) against the first (control, or the holdout)
  function renderLifts(a) {
    const lift = (l) => [el("td", {}, l ? signed(100 * l.value, 2) + " %" : "–"),
      el("td", {}, l ? "[" + signed(100 * l.low, 2) + ", " + signed(100 * l.high, 2) + "] %"
        : "not yet measurable")];
    return table(["placement", "click-through lift", "95 % interval", "conversion lift",
      "95 % interval"], scopes(a).map(([scope, s]) => el("tr", { dataset: { scope } },
      el("td", {}, scope === "all" ? "all placements" : scope), lift(s.lift_now),
      lift(s.conversion_lift_now))),
    { dataset: { field: "lifts" } }, [1, 2, 3, 4]);
  }

  function ratePlot(id, a, rate, low, high, title) {
    const placements = Object.keys(a.placements);
    const colours = ["#8c959f", "#2f6fde"];
    const traces = Object.keys(a.arms).map((arm, i) => {
      const figures = placements.map((p) => a.placements[p].arms[arm]);
      return { type: "bar", name: arm, x: placements, y: figures.map((f) => f[rate]),
        marker: { color: colours[i % 2] },
        error_y: { type: "data", symmetric: false,
                   array: figures.map((f) => (f[high] === null ? 0 : f[high] - f[rate])),
                   arrayminus: figures.map((f) => (f[low] === null ? 0 : f[rate] - f[low])) },
        hovertemplate: arm + " %{x}: %{y:.2%}<extra></extra>" };
    });
    return plot(rate + ":" + id, traces, {
      title: { text: title + " (95 % intervals)", x: 0, font: { size: 13 } }, barmode: "group",
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.12 },
      yaxis: { title: { text: rate === "click_through" ? "click-through" : "conversion rate" },
               tickformat: ".1%", rangemode: "tozero" },
      xaxis: { title: { text: "placement" } } });
  }

  function renderGuardrails(guardrails) {
    return table(["guardrail", "largest drop", "lift", "95 % interval", ""], guardrails.map((g) =>
      el("tr", { dataset: { guardrail: g.metric } }, el("td", {}, g.metric),
        el("td", {}, pct(g.max_drop, 0)), el("td", {}, g.lift === null ? "–"
          : signed(100 * g.lift, 2) + " %"),
        el("td", {}, g.low === null ? "–" : "[" + signed(100 * g.low, 2) + ", "
          + signed(100 * g.high, 2) + "] %"),
        el("td", {}, el("span", { class: "badge " + (g.breached ? "bad" : "good") },
          g.breached ? "breached" : "holds")))), { dataset: { field: "guardrails" } }, [1, 2, 3]);
  }

  function liftPlot(id, lift) {
    const at = lift.map((p) => p.at);
    const band = "rgba(47,111,222,0.18)";
    return plot("lift:" + id, [
      { x: at, y: lift.map((p) => p.high), mode: "lines", line: { width: 0 }, hoverinfo: "skip",
        showlegend: false, name: "high" },
      { x: at, y: lift.map((p) => p.low), mode: "lines", line: { width: 0 }, fill: "tonexty",
        fillcolor: band, name: "95 % interval", hoverinfo: "skip" },
      { x: at, y: lift.map((p) => p.value), mode: "lines+markers", name: "lift",
        line: { color: "#2f6fde", width: 2 }, hovertemplate: "%{y:+.2%}<extra></extra>" },
    ], { title: { text: id === "personalization" ? "Lift of personalization against the holdout"
                   : "Lift of the treatment against control", x: 0, font: { size: 13 } },
         yaxis: { title: { text: "relative lift" }, tickformat: "+.0%", zeroline: true,
                  zerolinecolor: "#8c959f" },
         xaxis: { title: { text: "time (UTC)" } } });
  }

  function renderModels(m) {
    if (m.error) return [problem(m.error)];
    const cards = ["production", "shadow"].map((role) => renderModel(role, m[role]));
    const compared = ["production", "shadow"].filter((r) => m[r] && m[r].comparison
      && m[r].comparison.value !== null);
    const out = [el("div", { class: "grid2" }, cards)];
    if (compared.length) {
      // each card's own primary metric: offline, or off-policy click-through (dr_ctr@1)
      const label = (r) => r + " " + m[r].version + " (" + m[r].primary + ")";
      out.push(plot("models", [{
        type: "scatter", mode: "markers", y: compared.map(label),
        x: compared.map((r) => m[r].comparison.value), marker: { size: 10, color: "#2f6fde" },
        error_x: { type: "data", symmetric: false,
                   array: compared.map((r) => m[r].comparison.high - m[r].comparison.value),
                   arrayminus: compared.map((r) => m[r].comparison.value - m[r].comparison.low) },
        name: "difference", hovertemplate: "%{x:+.4f}<extra></extra>" }],
      { title: { text: "gain on its primary metric over the model each was evaluated against "
                       + "(95 % interval)", x: 0, font: { size: 13 } },
        height: 90 + 40 * compared.length, margin: { l: 220, r: 20, t: 36, b: 40 },
        xaxis: { title: { text: "difference in the primary metric" }, zeroline: true,
                 zerolinecolor: "#8c959f", tickformat: "+.3f" },
        yaxis: { automargin: true }, showlegend: false }));
    }
    out.push(el("h3", {}, "Pointer log"), m.log.length ? table(["at", "pointer", "version", "why"],
      m.log.map((e) => el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.pointer),
        el("td", {}, e.version || "baseline"), el("td", {}, e.why))),
      { id: "pointer-log" }) : el("p", { class: "note" }, "No pointer moved yet."));
    return out;
  }

  function renderModel(role, model) {
    const head = el("h3", {}, role === "production" ? "Production" : "Shadow (candidate)");
    if (!model) {
      return el("div", { dataset: { model: role } }, head, el("p", { class: "note" },
        role === "production" ? "The baseline ranker (no model promoted)."
          : "None (edgepick train registers one)."));
    }
    if (model.error) return el("div", { dataset: { model: role } }, head, problem(model.error));
    const metrics = Object.keys(model.metrics);
    const c = model.comparison;
    return el("div", { dataset: { model: role } }, head,
      el("p", {}, el("strong", { dataset: { field: "version" } }, model.version),
        el("span", { class: "note" }, " trained ", when(model.trained_at),
          " · evaluated against ", model.evaluated_against || "the baseline ranker")),
      table(["metric", "this model", "production then"], metrics.map((k) =>
        el("tr", { dataset: { metric: k } }, el("td", {}, k),
          el("td", { dataset: { field: "value" } }, num(model.metrics[k], 4)),
          el("td", {}, model.against ? num(model.against[k], 4) : "–"))), {}, [1, 2]),
      c ? el("p", { dataset: { field: "comparison" } }, model.primary, " difference ",
        signed(c.value, 4), " [", signed(c.low, 4), ", ", signed(c.high, 4), "] (95 %, ",
        count(c.users), " users)") : null);
  }

  function renderEdge(e) {
    if (e.error) return [el("p", { class: "note", id: "edge-unavailable" }, e.error)];
    const rows = e.answers.map((a) => el("tr", { dataset: { source: a.source } },
      el("td", {}, a.source), el("td", { dataset: { field: "count" } }, count(a.count)),
      el("td", { dataset: { field: "share" } }, e.total ? pct(a.count / e.total, 1) : "–"),
      el("td", { dataset: { field: "rate" } }, a.rate_per_s === null ? "–"
        : a.rate_per_s.toFixed(1))));
    const lat = e.latency || {};
    return [
      el("div", { class: "figures" },
        figure("answers since start", count(e.total), { id: "edge-total" }),
        figure("lookup p50", duration(lat.p50_s)), figure("lookup p99", duration(lat.p99_s))),
      plot("edge", [{ type: "bar", x: e.answers.map((a) => a.source),
        y: e.answers.map((a) => a.count),
        marker: { color: e.answers.map((a) => SOURCE_COLOURS[a.source] || "#8c959f") },
        hovertemplate: "%{x}: %{y:,}<extra></extra>" }],
      { yaxis: { title: { text: "answers" }, rangemode: "tozero" },
        xaxis: { title: { text: "source" } }, showlegend: false, margin: { t: 10, b: 80 } }),
      table(["source", "answers", "share", "per second"], rows, { id: "edge-answers" }, [1, 2, 3]),
      el("p", { class: "note" }, "Every source but ‘decision’ served the placement default. "
        + "Per second: between the last two polls."),
    ];
  }

  function renderFreshness(f, at) {
    if (f.error) return [el("p", { class: "note", id: "freshness-unavailable" }, f.error)];
    const recent = f.since_last && f.since_last.count > 0 ? f.since_last : null;
    const shown = recent || f.since_start || {};
    if (shown.count) {
      freshnessHistory.push({ at, p50: shown.p50_s, p99: shown.p99_s });
      freshnessHistory = freshnessHistory.slice(-HISTORY);
    }
    const start = f.since_start || {};
    return [
      el("div", { class: "figures" },
        figure("p50 " + (recent ? "since last poll" : "since start"), duration(shown.p50_s),
          { id: "freshness-p50" }),
        figure("p99 " + (recent ? "since last poll" : "since start"), duration(shown.p99_s),
          { id: "freshness-p99" }),
        figure("queue lag", duration(f.lag_s), { id: "freshness-lag" }),
        figure("pending entries", count(f.pending))),
      plot("freshness", [
        { x: freshnessHistory.map((p) => p.at), y: freshnessHistory.map((p) => p.p50),
          mode: "lines+markers", name: "p50", line: { color: "#2f6fde" } },
        { x: freshnessHistory.map((p) => p.at), y: freshnessHistory.map((p) => p.p99),
          mode: "lines+markers", name: "p99", line: { color: "#cf222e" } }],
      { yaxis: { title: { text: "event → decision (s)" }, rangemode: "tozero" },
        xaxis: { title: { text: "poll time (UTC)" } }, margin: { t: 10 } }),
      el("p", { class: "note" }, "Since the worker started: p50 ", duration(start.p50_s), ", p99 ",
        duration(start.p99_s), " over ", count(start.count), " decisions",
        start.above_range ? " (beyond the last bucket: a floor)" : "",
        ". Quantiles interpolate within histogram buckets, as Prometheus does."),
    ];
  }

  function renderPlacements(p) {
    if (p.error) return [problem(p.error)];
    const shown = p.items.filter((i) => i.top.length).slice(0, 8);
    const traces = shown.map((i) => ({ type: "bar", orientation: "h", name: i.placement,
      y: i.top.map((r) => i.placement + "/" + r.variant), x: i.top.map((r) => r.smoothed_ctr),
      hovertemplate: "%{y}: %{x:.2%}<extra></extra>" }));
    const rows = shown.reduce((n, i) => n + i.top.length, 0);
    return [
      el("p", { class: "note" }, "Manifest revision ", String(p.manifest_rev), " · ",
        String(p.placements), " placements; top variants by clicks from the worker's "
        + "engagement counts (smoothed click-through: what the ranker reads)."),
      traces.length ? plot("placements", traces, {
        height: 80 + 22 * rows, margin: { l: 200, r: 20, t: 10, b: 50 },
        xaxis: { title: { text: "smoothed click-through" }, tickformat: ".0%",
                 rangemode: "tozero" },
        yaxis: { autorange: "reversed", automargin: true }, showlegend: false }) : null,
      renderFlags(p.flagged),
      el("div", { class: "placements" }, p.items.map((i) => el("div",
        { dataset: { placement: i.placement } },
        el("h3", {}, i.placement, " ", el("span", { class: "note" }, count(i.views), " views · ",
          count(i.clicks), " clicks · ", String(i.variants), " variants")),
        table(["variant", "views", "clicks", "CTR", "smoothed"], i.top.map((r) =>
          el("tr", { dataset: { variant: r.variant } },
            el("td", { title: r.title }, r.variant, r.default ? " (default)" : "",
              isFlagged(p.flagged, i.placement, r.variant)
                ? [" ", el("span", { class: "badge bad" }, "flagged")] : null),
            el("td", { dataset: { field: "views" } }, count(r.views)),
            el("td", { dataset: { field: "clicks" } }, count(r.clicks)),
            el("td", {}, pct(r.ctr)), el("td", {}, pct(r.smoothed_ctr)))), {}, [1, 2, 3, 4])))),
    ];
  }

  function isFlagged(flagged, placement, variant) {
    return !!flagged && flagged.items.some((f) => f.placement === placement
      && f.variant === variant);
  }

  function renderFlags(flagged) {
    if (!flagged) return null;
    if (!flagged.items.length) {
      return el("p", { class: "note", id: "flags" }, "No variant flagged for review by model ",
        flagged.version, ".");
    }
    return el("div", { id: "flags" }, el("h3", {}, "Flagged for review ",
      el("span", { class: "note" }, "(far fewer clicks than model " + flagged.version
        + " expected for the users they were shown to)")),
    table(["variant", "views", "clicks", "expected", "p"], flagged.items.map((f) =>
      el("tr", { dataset: { flag: f.placement + "/" + f.variant } },
        el("td", {}, f.placement + "/" + f.variant), el("td", {}, count(f.views)),
        el("td", {}, count(f.clicks)), el("td", {}, num(f.expected_clicks, 1)),
        el("td", {}, f.p_value === null ? "–" : f.p_value.toPrecision(2)))), {}, [1, 2, 3, 4]));
  }

  // ---- polling ---------------------------------------------------------------------
  function fill(id, children) {
    document.querySelector("#" + id + " .body").replaceChildren(...children);
  }

  function render(doc) {
    pendingPlots = [];
    fill("experiments", renderExperiments(doc.experiments));
    fill("personalization", [renderAnalysis({ id: "personalization",
      analysis: doc.personalization })]);
    fill("models", renderModels(doc.models));
    fill("edge", renderEdge(doc.edge));
    fill("freshness", renderFreshness(doc.freshness, doc.generated_at));
    fill("placements", renderPlacements(doc.placements));
    for (const draw of pendingPlots) draw();
    for (const [key, div] of plots) if (!div.isConnected) { Plotly.purge(div); plots.delete(key); }
    const status = document.getElementById("status");
    status.className = "status";
    status.dataset.generatedAt = doc.generated_at;
    status.textContent = "updated " + when(doc.generated_at) + " · every " + doc.refresh_s + " s";
  }

  function showSignIn(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    document.getElementById("panels").hidden = true;
    document.getElementById("sign-out").hidden = true;
    document.getElementById("sign-in").hidden = false;
    const error = document.getElementById("sign-in-error");
    error.hidden = !message;
    error.textContent = message || "";
    document.getElementById("status").textContent = "not signed in";
  }

  async function poll() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) { showSignIn(""); return; }
    let delay = 5;
    try {
      const answer = await fetch("/v1/dashboard", { cache: "no-store",
        headers: { Authorization: "Bearer " + token } });
      const body = await answer.json();
      if (answer.status === 401 || answer.status === 403) {
        showSignIn(body.detail || "refused");
        return;
      }
      if (!answer.ok) throw new Error(body.detail || answer.statusText);
      document.getElementById("sign-in").hidden = true;
      document.getElementById("panels").hidden = false;
      document.getElementById("sign-out").hidden = false;
      render(body);
      delay = body.refresh_s;
    } catch (error) {
      const status = document.getElementById("status");
      status.className = "status stale";
      status.textContent = "could not update (" + error.message + "): retrying; figures below "
        + "are from " + when(status.dataset.generatedAt);
    }
    timer = setTimeout(poll, delay * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("token");
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = "";
      poll();
    });
    document.getElementById("sign-out").addEventListener("click", () => showSignIn(""));
    poll();
  });
})();
