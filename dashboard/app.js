// The dashboard's script: reads /admin/usage and /admin/monitor with the admin token
// (kept in a cookie by the sign-in page) and draws uPlot charts and tables.
import uPlot from "uplot";

const $ = (id) => document.getElementById(id);
const token = decodeURIComponent((document.cookie.match(/(?:^|; )gw_admin=([^;]*)/) || [])[1] || "");
const COLORS = ["#2e6be6", "#e6792e", "#2ea44f", "#b42fd6", "#d6b42f", "#2fb4d6", "#d62f5f", "#6b6b6b"];
const FILTERS = ["team", "project", "agent", "model"];

async function api(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

const range = { from: 0, to: 0 };
function params(extra) {
  const q = new URLSearchParams({ from: String(range.from), to: String(range.to), ...extra });
  for (const f of FILTERS) {
    const v = $(`f-${f}`).value.trim();
    if (v) q.set(f, v);
  }
  return q.toString();
}

const usage = (extra) => api(`/admin/usage?${params(extra)}`).then((j) => j.data);
const STEP_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
const granularity = () => (Number($("range").value) <= 360 ? "minute" : Number($("range").value) <= 1440 ? "hour" : "day");
const label = (v) => (v === null || v === undefined ? "(none)" : String(v));
const usd = (v) => `$${Number(v).toFixed(6)}`;
const cell = (v, cls = "") => `<td class="${cls}">${v === null || v === undefined ? "–" : String(v).replace(/[<>&]/g, "")}</td>`;

function table(id, columns, rows, key) {
  const head = `<tr>${columns.map((c) => `<th>${c[0]}</th>`).join("")}</tr>`;
  const body = rows.length
    ? rows.map((r) => `<tr data-group="${label(r[key]).replace(/"/g, "")}">${columns.map((c) => cell(c[2] ? c[2](r) : r[c[1]], c[1])).join("")}</tr>`).join("")
    : `<tr><td class="empty" colspan="${columns.length}">no requests in this range</td></tr>`;
  $(id).innerHTML = head + body;
}

const charts = {};
function draw(id, xs, series, stacked, yLabel) {
  const el = $(id);
  let ys = series.map((s) => s.values);
  // What the chart plots in all, for checks against the API.
  el.dataset.total = String(+series.reduce((n, s) => n + s.values.reduce((m, v) => m + (v ?? 0), 0), 0).toPrecision(12));
  if (stacked) ys = ys.map((_, i) => xs.map((_, j) => ys.slice(i).reduce((n, v) => n + v[j], 0)));
  const opts = {
    width: Math.max(360, el.clientWidth || 520),
    height: 220,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 70, values: (u, ticks) => ticks.map((v) => (Math.abs(v) < 0.01 && v !== 0 ? v.toExponential(1) : String(+v.toPrecision(3)))) }],
    series: [{}, ...series.map((s, i) => ({ label: s.name, stroke: COLORS[i % COLORS.length], fill: stacked ? COLORS[i % COLORS.length] + "55" : undefined, width: 2, points: { show: !stacked || xs.length < 3 } }))],
  };
  charts[id]?.destroy();
  el.innerHTML = "";
  charts[id] = new uPlot(opts, [xs, ...ys], el);
  el.dataset.points = String(xs.length);
  el.dataset.series = series.map((s) => s.name).join(",");
}

// Every bucket of the range (empty ones as 0), one series per group.
function pivot(rows, dim, measure, step, empty = 0) {
  const xs = [];
  for (let t = Math.floor(range.from / step) * step; t < range.to; t += step) xs.push(t / 1000);
  const names = [...new Set(rows.map((r) => label(r[dim])))].sort();
  const series = names.map((name) => {
    const values = xs.map(() => empty);
    for (const r of rows) {
      const i = xs.indexOf(Date.parse(r.bucket) / 1000);
      if (i >= 0 && label(r[dim]) === name) values[i] = (values[i] ?? 0) + (r[measure] ?? 0);
    }
    return { name, values };
  });
  return { xs, series };
}

let latest = 0;
async function refresh() {
  const mine = ++latest; // a newer refresh wins over a slower older one
  const dim = $("group").value;
  for (const el of document.querySelectorAll(".dim")) el.textContent = dim;
  $("status").textContent = "loading…";
  document.body.dataset.loaded = "false";
  try {
    const g = granularity();
    range.to = Date.now() + 60_000;
    range.from = range.to - Number($("range").value) * 60_000;
    const [overTime, breakdown, latency, latencyOverTime, keys, regions, monitor] = await Promise.all([
      usage({ group_by: dim, granularity: g }),
      usage({ group_by: dim }),
      usage({ group_by: "provider" }),
      usage({ group_by: "provider", granularity: g }),
      usage({ group_by: "key,team" }),
      usage({ group_by: "region" }),
      api(`/admin/monitor?${params({})}`),
    ]);
    if (mine !== latest) return;
    const sum = (f) => breakdown.reduce((n, r) => n + (r[f] ?? 0), 0);
    $("total-requests").textContent = String(sum("requests"));
    $("total-cost").textContent = usd(sum("cost_usd"));
    $("total-tokens").textContent = String(sum("prompt_tokens") + sum("completion_tokens"));
    $("total-errors").textContent = String(sum("errors"));

    const spend = pivot(overTime, dim, "cost_usd", STEP_MS[g]);
    draw("chart-spend", spend.xs, spend.series, true, "USD");
    const reqs = pivot(overTime, dim, "requests", STEP_MS[g]);
    draw("chart-requests", reqs.xs, reqs.series, true, "requests");
    const lat = pivot(latencyOverTime, "provider", "latency_ms_p95", STEP_MS[g], null);
    draw("chart-latency", lat.xs, lat.series, false, "ms");

    table("breakdown", [[dim, dim, (r) => label(r[dim])], ["requests", "requests"], ["errors", "errors"], ["prompt tokens", "prompt_tokens"], ["completion tokens", "completion_tokens"], ["cached", "cached_tokens"], ["cost", "cost_usd", (r) => usd(r.cost_usd)]], breakdown, dim);
    table("latency", [["provider", "provider", (r) => label(r.provider)], ["requests", "requests"], ["p50 ms", "latency_ms_p50"], ["p95 ms", "latency_ms_p95"], ["TTFT p50 ms", "ttft_ms_p50"], ["error rate", "errors", (r) => `${((100 * r.errors) / r.requests).toFixed(1)}%`]], latency, "provider");
    const endpoints = monitor.endpoints.flatMap((e) => (e.models.length ? e.models : [{}]).map((m) => ({ ...m, provider: e.provider, circuit: e.circuit ?? "unknown" })));
    table("endpoints", [["endpoint", "provider"], ["model", "upstream_model"], ["circuit", "circuit"], ["requests", "requests"], ["error rate", "error_rate", (r) => (r.error_rate == null ? null : `${(100 * r.error_rate).toFixed(1)}%`)], ["by class", "errors_by_class", (r) => (r.errors_by_class ? Object.entries(r.errors_by_class).map(([k, v]) => `${k}: ${v}`).join(", ") || "none" : null)], ["tool calls checked", "tool_calls_checked"], ["tool-call accuracy", "tool_call_accuracy", (r) => (r.tool_call_accuracy == null ? null : `${(100 * r.tool_call_accuracy).toFixed(1)}%`)]], endpoints, "provider");
    table("keys", [["key", "key"], ["team", "team"], ["requests", "requests"], ["cost", "cost_usd", (r) => usd(r.cost_usd)]], [...keys].sort((a, b) => b.cost_usd - a.cost_usd).slice(0, 10), "key");
    table("regions", [["region", "region", (r) => label(r.region)], ["requests", "requests"], ["share", "requests", (r) => `${((100 * r.requests) / Math.max(1, regions.reduce((n, x) => n + x.requests, 0))).toFixed(1)}%`]], regions, "region");
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (mine !== latest) return;
    $("status").textContent = `failed: ${error.message}`;
    document.body.dataset.loaded = "error";
  }
}

for (const id of ["range", "group"]) $(id).addEventListener("change", refresh);
$("refresh").addEventListener("click", refresh);
for (const f of FILTERS) $(`f-${f}`).addEventListener("change", refresh);
refresh();
setInterval(refresh, 30_000);
