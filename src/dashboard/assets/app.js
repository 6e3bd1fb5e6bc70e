// NordIQ dashboard: one page, plain DOM and SVG. Every number comes from /api/…, which the
// dashboard server answers from nordiq-inference. Only the visible view refreshes.
"use strict";

const state = { config: null, view: "overview", arg: null, timer: null, jobTimer: null, serverNames: [] };
const $ = (id) => document.getElementById(id);
const LEVELS = ["healthy", "watch", "warning", "critical"];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function api(path, options) {
  const r = await fetch("/api/" + path, options);
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const message = body && body.error ? body.error : String(body);
    const err = new Error(`/api/${path}: ${r.status} ${message}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

function banner(message) {
  const b = $("banner");
  b.hidden = !message;
  b.textContent = message || "";
}

function level(l) {
  return el("span", { class: "level " + l }, l);
}

function fmt(v, digits = 1) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);
}

function minutes(m) {
  return m >= 60 && m % 60 === 0 ? m / 60 + " h" : m + " min";
}

function pct(p) {
  return (p * 100).toFixed(p < 0.01 && p > 0 ? 2 : 1) + " %";
}

function replace(node, ...children) {
  node.replaceChildren(...children.flat());
}

// ---------- charts (SVG) ----------

/// A time chart: history line, forecast median, p10–p90 band, a "now" marker.
function timeChart({ history = [], p50 = [], lo = [], hi = [], min, max, width = 340, height = 140 }) {
  const all = [...history, ...p50, ...lo, ...hi].filter((p) => p[1] !== null && Number.isFinite(p[1]));
  const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (!all.length) {
    s.append(Object.assign(svg("text", { x: 10, y: 20, class: "axis" }), { textContent: "no data" }));
    return s;
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  let v0 = Math.min(...all.map((p) => p[1])), v1 = Math.max(...all.map((p) => p[1]));
  if (min !== undefined && Number.isFinite(min)) v0 = Math.min(v0, min);
  if (max !== undefined && Number.isFinite(max)) v1 = Math.max(v1, max);
  if (v1 - v0 < 1e-9) { v0 -= 1; v1 += 1; }
  const pad = 26;
  const x = (t) => pad + ((t - t0) / Math.max(t1 - t0, 1)) * (width - pad - 4);
  const y = (v) => height - 14 - ((v - v0) / (v1 - v0)) * (height - 22);
  const line = (pts) => {
    let d = "", pen = false;
    for (const [t, v] of pts) {
      if (v === null || !Number.isFinite(v)) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1);
      pen = true;
    }
    return d;
  };
  if (lo.length && hi.length) {
    const up = hi.filter((p) => p[1] !== null), down = lo.filter((p) => p[1] !== null).reverse();
    if (up.length && down.length) {
      const d = "M" + up.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1)).join("L") +
        "L" + down.map(([t, v]) => x(t).toFixed(1) + "," + y(v).toFixed(1)).join("L") + "Z";
      s.append(svg("path", { d, class: "band" }));
    }
  }
  if (history.length) s.append(svg("path", { d: line(history), class: "hist" }));
  if (p50.length) {
    s.append(svg("path", { d: line(p50), class: "p50" }));
    const now = x(p50[0][0]);
    s.append(svg("line", { x1: now, x2: now, y1: 4, y2: height - 14, class: "now" }));
  }
  for (const [v, yy] of [[v1, 10], [v0, height - 16]]) {
    const t = svg("text", { x: 2, y: yy, class: "axis" });
    t.textContent = fmt(v, Math.abs(v) < 10 ? 2 : 0);
    s.append(t);
  }
  return s;
}

function barChart(values, labels, width = 360, height = 150) {
  const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
  const top = Math.max(1, ...values);
  const w = (width - 10) / values.length;
  values.forEach((v, i) => {
    const h = (v / top) * (height - 30);
    s.append(svg("rect", { x: 5 + i * w + 2, y: height - 18 - h, width: w - 4, height: h, class: "bar" }));
    const n = svg("text", { x: 5 + i * w + w / 2 - 6, y: height - 22 - h, class: "axis" });
    n.textContent = v;
    s.append(n);
    const l = svg("text", { x: 5 + i * w + 2, y: height - 4, class: "axis" });
    l.textContent = labels[i];
    s.append(l);
  });
  return s;
}

// ---------- views ----------

const views = {};

views.overview = async () => {
  const o = await api("overview");
  $("model").textContent = "model " + o.model_id;
  const card = (label, value, cls) => el("div", { class: "card" + (cls ? " " + cls : "") },
    el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  replace($("kpis"),
    card("servers", o.servers),
    card("critical", o.levels.critical), card("warning", o.levels.warning), card("watch", o.levels.watch),
    card("healthy", o.levels.healthy),
    card("mean risk", fmt(o.mean_risk)),
    card("anomalous now", o.anomalous_total, o.anomalous_total ? "anomalous" : ""),
    ...o.outlook.map((h) =>
      card(`incident within ${minutes(h.horizon_minutes)}`, pct(h.probability_any))),
    card("forecast by", o.methods.map(([m, n]) => `${m} ${n}`).join(", ") || "–"));
  replace($("outlook"), el("table", {},
    el("tr", {}, el("th", {}, "within"), el("th", {}, "P(any server critical)"), el("th", {}, "expected servers"), el("th", {}, "most likely")),
    o.outlook.map((h) => el("tr", {},
      el("td", {}, minutes(h.horizon_minutes)), el("td", {}, pct(h.probability_any)), el("td", {}, fmt(h.expected_servers, 2)),
      el("td", {}, h.most_likely.slice(0, 3).filter((s) => s[1] > 0.001).map((s) => `${s[0]} ${pct(s[1])}`).join(", ") || "–")))));
  replace($("anomalous"), o.anomalous.length
    ? el("table", {}, el("tr", {}, el("th", {}, "server"), el("th", {}, "score"), el("th", {}, "metric")),
      o.anomalous.map((a) => el("tr", { class: "anomaly-row" },
        el("td", {}, el("a", { href: "#server/" + encodeURIComponent(a.server) }, a.server)),
        el("td", {}, fmt(a.score, 2)), el("td", {}, a.metric || "–"))))
    : el("p", { class: "muted" }, "No server is outside its forecast band."));
  replace($("histogram"), barChart(o.risk_histogram, o.risk_histogram.map((_, i) => `${i * 10}`)));
  // The fleet answer is large; the top list comes with the overview instead.
  replace($("top"), el("tr", {}, el("th", {}, "server"), el("th", {}, "profile"), el("th", {}, "risk"), el("th", {}, "level"), el("th", {}, "anomaly"), el("th", {}, "method")),
    o.top.map((s) => el("tr", {},
      el("td", {}, el("a", { href: "#server/" + encodeURIComponent(s.server) }, s.server)),
      el("td", {}, s.profile), el("td", {}, fmt(s.risk)), el("td", {}, level(s.level)), el("td", {}, fmt(s.anomaly_score, 2)), el("td", {}, s.method))));
};

function rememberServers(names) {
  if (names.length === state.serverNames.length && names.every((n, i) => n === state.serverNames[i])) return;
  state.serverNames = names;
  replace($("server-list"), names.map((n) => el("option", { value: n })));
}

// Heatmap on a canvas: only the visible rows are drawn, so 1,000 servers stay smooth.
const heat = { rows: [], metrics: [], rowH: 16, colW: 48, nameW: 160 };

function riskColour(r) {
  if (r === null || r === undefined) return "#e8eaee";
  const t = Math.max(0, Math.min(1, r / 100));
  const hue = 130 - 130 * t;
  return `hsl(${hue}, 65%, ${88 - 38 * t}%)`;
}

function drawHeat() {
  const scroll = $("heat-scroll"), canvas = $("heat");
  const width = heat.nameW + heat.metrics.length * heat.colW;
  const height = Math.min(scroll.clientHeight || 520, 520);
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const first = Math.floor(scroll.scrollTop / heat.rowH);
  const count = Math.ceil(height / heat.rowH) + 1;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  for (let i = first; i < Math.min(heat.rows.length, first + count); i++) {
    const row = heat.rows[i], y = (i - first) * heat.rowH - (scroll.scrollTop % heat.rowH);
    ctx.fillStyle = "#1b2330";
    ctx.fillText(row.name, 4, y + heat.rowH / 2);
    row.risks.forEach((r, j) => {
      ctx.fillStyle = riskColour(r);
      ctx.fillRect(heat.nameW + j * heat.colW + 1, y + 1, heat.colW - 2, heat.rowH - 2);
    });
  }
}

views.heatmap = async () => {
  const current = await api("predictions/current");
  rememberServers(Object.keys(current.servers));
  heat.metrics = state.config.catalog.map((m) => m.name);
  heat.rows = Object.entries(current.servers)
    .sort((a, b) => b[1].risk - a[1].risk || a[0].localeCompare(b[0]))
    .map(([name, s]) => ({ name, risks: heat.metrics.map((m) => (s.metrics[m] ? s.metrics[m].risk : null)) }));
  replace($("heat-head"), heat.metrics.map((m) => el("span", { title: m }, m)));
  $("heat-spacer").style.height = heat.rows.length * heat.rowH + "px";
  $("heat-spacer").style.marginBottom = "-" + Math.min(heat.rows.length * heat.rowH, 520) + "px";
  drawHeat();
};

async function loadServer(name) {
  const [p, h] = await Promise.all([
    api("predictions/" + encodeURIComponent(name)),
    api("historical/" + encodeURIComponent(name) + "?hours=24"),
  ]);
  $("model").textContent = "model " + p.model_id;
  replace($("server-head"), " ", level(p.level), ` risk ${fmt(p.risk)} · `,
    el("span", { class: "anomaly-score" + (p.anomaly.anomalous ? " anomalous" : "") },
      (p.anomaly.judged_steps ? `anomaly ${fmt(p.anomaly.score, 2)}${p.anomaly.anomalous ? " (anomalous now" + (p.anomaly.metric ? ": " + p.anomaly.metric : "") + ")" : ""}` : "anomaly –")
        + ` · threshold ${fmt(p.anomaly.threshold, 2)}`),
    ` · ${p.profile} · forecast by ${p.method} · from ${p.forecast_start}`);
  const stepMs = p.step_seconds * 1000;
  const start = Date.parse(p.forecast_start), hStart = Date.parse(h.start);
  const charts = state.config.catalog.map((def) => {
    const m = p.metrics[def.name];
    if (!m) return null;
    const series = (values, t0) => (values || []).map((v, i) => [t0 + i * stepMs, v]);
    const chart = timeChart({
      history: series(h.metrics[def.name], hStart),
      p50: series(m.quantiles.p50, start),
      lo: series(m.quantiles.p10, start),
      hi: series(m.quantiles.p90, start),
      min: Number.isFinite(def.min) ? def.min : undefined,
    });
    return el("div", { class: "chart", "data-metric": def.name },
      el("h3", {}, el("span", {}, `${def.name} ${def.unit ? "(" + def.unit + ")" : ""}`), level(m.level)),
      chart,
      el("div", { class: "muted" }, `now ${fmt(m.current)} · peak ${fmt(m.predicted_peak)} · ${m.trend} · anomaly ${fmt(m.anomaly_score, 2)}` +
        (m.expected_low !== null && m.expected_low !== undefined ? ` (expected ${fmt(m.expected_low)}–${fmt(m.expected_high)})` : "")));
  }).filter(Boolean);
  replace($("server-charts"), charts);
  if (p.method !== "tft") {
    $("explain").dataset.server = name;
    replace($("explain"), el("p", { class: "muted" },
      `${name} is forecast by ${p.method}, a baseline: explanations are the trained model's own (variable selection and attention), and a baseline has none.`));
    return;
  }
  // A different server's explanation must not stay on screen while this one loads.
  if ($("explain").dataset.server !== name) {
    $("explain").dataset.server = name;
    replace($("explain"), el("p", { class: "muted loading" }, "Loading the model's explanation…"));
  }
  try {
    const e = await api("explain/" + encodeURIComponent(name));
    const bars = (title, pairs) => el("div", { class: "bars" }, el("h3", {}, title),
      pairs.slice().sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, w]) =>
        el("div", {}, el("span", { style: "width:180px;display:inline-block" }, n),
          el("span", { class: "fill", style: `width:${Math.round(w * 300)}px` }), fmt(w * 100) + " %")));
    const att = e.explanation.attention_over_past_steps;
    replace($("explain"),
      el("div", { class: "row" },
        bars("Static", e.explanation.static_variables || []),
        bars("Encoder (past)", e.explanation.encoder_variables),
        bars("Decoder (known future)", e.explanation.decoder_variables)),
      el("h3", {}, "Attention over the past steps"),
      barChart(downsample(att, 24), downsample(att, 24).map((_, i) => (i % 6 === 0 ? `-${24 - i}h` : ""))));
  } catch (err) {
    if (err.status === 409) replace($("explain"), el("p", { class: "muted" }, err.message.replace(/^.*409 /, "")));
    else throw err;
  }
}

function downsample(values, n) {
  if (!values || !values.length) return [];
  const size = Math.ceil(values.length / n);
  const out = [];
  for (let i = 0; i < values.length; i += size) out.push(Number(values.slice(i, i + size).reduce((a, b) => a + b, 0).toFixed(3)));
  return out;
}

views.server = async () => {
  if (!state.serverNames.length) rememberServers(Object.keys((await api("predictions/current")).servers));
  const name = state.arg || $("server-name").value || state.serverNames[0];
  if (!name) {
    replace($("server-charts"), el("p", { class: "muted" }, "No server is forecast yet."));
    return;
  }
  $("server-name").value = name;
  await loadServer(name);
};

views.alerts = async () => {
  const a = await api("alerts/active");
  $("model").textContent = "model " + a.model_id;
  replace($("alert-counts"), LEVELS.slice(1).reverse().map((l) =>
    el("div", { class: "card", "data-level": l }, el("div", { class: "value" }, a.levels[l]), el("div", { class: "label" }, l))));
  replace($("alert-table"), el("tr", {}, el("th", {}, "level"), el("th", {}, "risk"), el("th", {}, "server"), el("th", {}, "metrics")),
    a.alerts.map((s) => el("tr", { class: "alert-row" }, el("td", {}, level(s.level)), el("td", {}, fmt(s.risk)),
      el("td", {}, el("a", { href: "#server/" + encodeURIComponent(s.server) }, s.server)),
      el("td", {}, s.metrics.map((m) => `${m.metric} ${fmt(m.risk, 0)}`).join(", ")))));
  replace($("anomaly-table"), el("tr", {}, el("th", {}, "score"), el("th", {}, "server"), el("th", {}, "metrics (observed vs expected band)")),
    a.anomalies.map((s) => el("tr", { class: "anomaly-row" }, el("td", {}, fmt(s.score, 2)),
      el("td", {}, el("a", { href: "#server/" + encodeURIComponent(s.server) }, s.server)),
      el("td", {}, s.metrics.map((m) => `${m.metric} ${fmt(m.score, 1)} (${fmt(m.current)} vs ${fmt(m.expected_low)}–${fmt(m.expected_high)})`).join(", ")))));
  replace($("event-table"), el("tr", {}, el("th", {}, "time"), el("th", {}, "server"), el("th", {}, "change"), el("th", {}, "risk"), el("th", {}, "metric")),
    a.recent_events.slice().reverse().slice(0, 50).map((e) => el("tr", {}, el("td", {}, e.timestamp), el("td", {}, e.server),
      el("td", {}, level(e.from), " → ", level(e.to), " ", e.kind), el("td", {}, fmt(e.risk)), el("td", {}, e.metric || "–"))));
};

function describeDrift(r) {
  if (r.kind === "behind_baseline") return `live MASE ${fmt(r.served_mase, 3)} behind the baseline's ${fmt(r.baseline_mase, 3)}`;
  if (r.kind === "coverage") return `live coverage ${pct(r.coverage)}`;
  return `${r.metric} shifted (PSI ${fmt(r.psi, 2)})`;
}

async function refreshJob() {
  const stats = await api("admin/training-stats");
  const job = stats.jobs.total > 0 ? await api("admin/training-status") : null;
  if (!job) {
    replace($("job"), el("p", { class: "muted" }, "No training job has run yet."));
    return false;
  }
  replace($("job"),
    el("div", {}, `job ${job.job_id} · ${job.status} · ${job.stage}`),
    el("div", { class: "progress" }, el("div", { style: `width:${job.progress}%` })),
    el("div", { class: "muted" }, `epoch ${job.epoch}/${job.epochs} · validation loss ${fmt(job.validation_loss, 4)}` +
      (job.promotion ? ` · ${job.promotion.promoted ? "promoted" : "not promoted"}: ${job.promotion.reason}` : "") +
      (job.error ? ` · ${job.error}` : "")));
  return job.status === "queued" || job.status === "running";
}

views.models = async () => {
  const [info, models, status] = await Promise.all([api("admin/model-info"), api("admin/models"), api("status")]);
  const drift = status.drift || {};
  replace($("drift"), el("p", { class: drift.drifting ? "drifting" : "muted" },
    drift.drifting ? `Drifting since ${new Date(drift.since_ms).toISOString()}: ${(drift.reasons || []).map(describeDrift).join("; ")}`
      : drift.checked_at_ms ? `No drift at the latest check (${new Date(drift.checked_at_ms).toISOString()}).` : "Not checked yet."),
    (drift.psi || []).length ? el("div", { class: "muted" }, "input shift (PSI) " + drift.psi.map(([m, v]) => `${m} ${fmt(v, 2)}`).join(", ")) : "");
  $("model").textContent = "model " + info.serving;
  replace($("model-info"), el("table", {},
    [["serving", info.serving], ["baseline (servers not yet warm)", info.baseline], ["current", info.current || "–"],
     ["previous", info.previous || "–"], ["loaded", info.loaded_at || "–"],
     ["held-out MASE (seasonal naive = 1)", fmt(info.mase, 3)], ["p10–p90 coverage", info.coverage === null ? "–" : pct(info.coverage)],
     ["anomaly threshold", `${fmt(info.anomaly_threshold, 3)} (${info.anomaly_threshold_reason})`],
     ["reloads", `${info.reloads_ok} ok, ${info.reloads_failed} refused`],
     ["last reload", info.last_reload ? `${info.last_reload.at}: ${info.last_reload.ok ? "ok" : "refused, " + info.last_reload.error} (${fmt(info.last_reload.duration_ms, 0)} ms)` : "–"]]
      .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
  const live = info.live;
  replace($("live"), !live ? el("p", { class: "muted" }, "Live accuracy is off (live.max_servers = 0).")
    : el("table", {},
      el("tr", {}, el("th", {}, "span"), el("th", {}, "forecaster"), el("th", {}, "windows"), el("th", {}, "MASE"), el("th", {}, "pinball"), el("th", {}, "coverage"),
        ...(live.week.served.horizons || []).map((b) => el("th", {}, "MASE " + b.label))),
      [["last day", live.day], ["last week", live.week]].flatMap(([label, span]) =>
        [[live.served, span.served], [live.baseline, span.baseline]].map(([who, s]) => el("tr", { class: "live-row" },
          el("td", {}, label), el("td", {}, who), el("td", {}, s.windows), el("td", {}, fmt(s.mase, 3)), el("td", {}, fmt(s.pinball, 5)),
          el("td", {}, s.coverage === null ? "–" : pct(s.coverage)),
          ...(s.horizons || []).map((b) => el("td", {}, fmt(b.mase, 3))))))),
    live ? el("p", { class: "muted" }, `${live.pending_windows} served forecasts are waiting for their horizon to close.`) : "");
  replace($("model-table"), el("tr", {}, el("th", {}, "model"), el("th", {}, "created"), el("th", {}, "MASE"), el("th", {}, "coverage"), el("th", {}, "")),
    models.models.slice().reverse().map((m) => el("tr", {}, el("td", {}, m.id), el("td", {}, m.created || "–"), el("td", {}, fmt(m.mase, 3)),
      el("td", {}, m.coverage === null ? "–" : pct(m.coverage)), el("td", {}, m.current ? "current" : m.previous ? "previous" : ""))));
  const active = await refreshJob();
  clearInterval(state.jobTimer);
  if (active) state.jobTimer = setInterval(async () => { if (!(await refreshJob().catch(() => false))) clearInterval(state.jobTimer); }, 2000);
};

function localInput(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function historicalQuery(format) {
  const from = new Date($("hist-from").value), to = new Date($("hist-to").value);
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), format });
  if ($("hist-server").value) q.set("servers", $("hist-server").value);
  return "historical?" + q.toString();
}

views.historical = async () => {
  if (!$("hist-from").value) {
    const now = new Date();
    $("hist-to").value = localInput(now);
    $("hist-from").value = localInput(new Date(now - 6 * 3600 * 1000));
  }
  if (!$("hist-metric").options.length) {
    replace($("hist-metric"), state.config.catalog.map((m) => el("option", { value: m.name }, m.name)));
  }
  if (!state.serverNames.length) rememberServers(Object.keys((await api("predictions/current")).servers));
  if (!$("hist-server").value && state.serverNames.length) $("hist-server").value = state.serverNames[0];
  $("hist-csv").href = "/api/" + historicalQuery("csv");
  const data = await api(historicalQuery("json"));
  const metric = $("hist-metric").value;
  const points = data.records.map((r) => [Date.parse(r.timestamp), r[metric]]);
  replace($("hist-chart"), timeChart({ history: points, width: 900, height: 220 }));
  $("hist-note").textContent = `${data.records.length} samples of ${$("hist-server").value || "every server"}`;
};

// ---------- routing and refresh ----------

function route() {
  const [view, ...rest] = (location.hash.slice(1) || "overview").split("/");
  state.view = views[view] ? view : "overview";
  state.arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + state.view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === state.view);
  render();
}

async function render() {
  try {
    await views[state.view]();
    banner("");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    banner(err.message);
  }
}

function schedule(seconds) {
  clearInterval(state.timer);
  state.timer = setInterval(render, seconds * 1000);
}

async function start() {
  state.config = await api("config");
  $("refresh").value = String(state.config.refresh_seconds);
  if (!$("refresh").value) $("refresh").value = "30";
  $("refresh").addEventListener("change", () => schedule(Number($("refresh").value)));
  $("heat-scroll").addEventListener("scroll", () => requestAnimationFrame(drawHeat));
  $("heat").addEventListener("click", (ev) => {
    const i = Math.floor(($("heat-scroll").scrollTop + ev.offsetY) / heat.rowH);
    if (heat.rows[i]) location.hash = "#server/" + encodeURIComponent(heat.rows[i].name);
  });
  $("server-name").addEventListener("change", () => { location.hash = "#server/" + encodeURIComponent($("server-name").value); });
  $("hist-show").addEventListener("click", render);
  $("train").addEventListener("click", async () => {
    const q = new URLSearchParams({ epochs: $("epochs").value, incremental: $("incremental").checked });
    try { await api("admin/trigger-training?" + q, { method: "POST" }); render(); } catch (err) { banner(err.message); }
  });
  $("cancel").addEventListener("click", async () => {
    try { await api("admin/cancel-training", { method: "POST" }); render(); } catch (err) { banner(err.message); }
  });
  $("scenario").hidden = !state.config.simulator;
  for (const b of document.querySelectorAll("[data-scenario]")) {
    b.addEventListener("click", async () => {
      try {
        await api("scenario/set?scenario=" + b.dataset.scenario, { method: "POST" });
        $("scenario-status").textContent = JSON.stringify(await api("scenario/status"));
      } catch (err) { banner(err.message); }
    });
  }
  window.addEventListener("hashchange", route);
  schedule(Number($("refresh").value));
  route();
}

start().catch((err) => banner(err.message));
