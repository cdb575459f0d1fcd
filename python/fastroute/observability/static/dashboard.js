// fastroute dashboard: polls /admin/stats and renders it. No framework, no build step, no CDN.
// Every number shown sits in an element with data-stat="<path in the stats JSON>" and data-value="<raw
// JSON value>", so what the page shows can be checked against /admin/stats exactly.
"use strict";

const params = new URLSearchParams(location.search);
const state = {
  token: params.get("token") || "",
  period: params.get("period") || "1h",
  app: params.get("app") || "",
  department: params.get("department") || "",
  refreshMs: Math.max(1000, Number(params.get("refresh_ms")) || 5000),
};
const TIERS = ["budget", "mid", "frontier", "cache"];
const COLORS = { budget: "#12b886", mid: "#4c6ef5", frontier: "#9c36b5", cache: "#f59f00", errors: "#e03131" };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function fmt(value, unit) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  const text = value.toLocaleString("en-US", { maximumFractionDigits: 6 });
  return unit ? text + unit : text;
}

// Fills every [data-stat] element under `root` from `stats` (text and data-value).
function fill(root, stats) {
  for (const el of root.querySelectorAll("[data-stat]")) {
    const value = get(stats, el.dataset.stat);
    el.dataset.value = value === undefined || value === null ? "" : String(value);
    el.textContent = fmt(value, el.dataset.unit);
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const stat = (path, unit) => el("span", unit ? { "data-stat": path, "data-unit": unit } : { "data-stat": path });

function svgNode(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function timeLabel(t, step) {
  const d = new Date(t * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  if (step >= 86400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (step >= 3600) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${step < 60 ? ":" + pad(d.getSeconds()) : ""}`;
}

function frame(container) {
  container.textContent = "";
  const w = Math.max(200, container.clientWidth || 600);
  const h = Math.max(120, container.clientHeight || 190);
  const svg = svgNode("svg", { viewBox: `0 0 ${w} ${h}`, role: "img" });
  container.append(svg);
  return { svg, w, h, left: 52, right: 8, top: 8, bottom: 20 };
}

function axes(f, maxY, points, step, yfmt) {
  const { svg, w, h, left, right, top, bottom } = f;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    svg.append(svgNode("line", { x1: left, x2: w - right, y1: y, y2: y, class: "axis" }));
    const label = svgNode("text", { x: left - 6, y: y + 3, "text-anchor": "end" });
    label.textContent = yfmt((maxY * i) / 4);
    svg.append(label);
  }
  const n = points.length;
  const picks = n <= 1 ? [0] : [0, Math.floor((n - 1) / 2), n - 1];
  for (const i of new Set(picks)) {
    if (!points[i]) continue;
    const x = left + ((w - left - right) * (i + 0.5)) / Math.max(1, n);
    const label = svgNode("text", { x, y: h - 5, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" });
    label.textContent = timeLabel(points[i].t, step);
    svg.append(label);
  }
}

// The smallest "nice" axis maximum >= v whose four gridline steps are round numbers (integers when
// `integer`, e.g. request counts).
function niceMax(v, integer) {
  if (!(v > 0)) return integer ? 4 : 1;
  const raw = v / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    const step = m * p;
    if (step >= raw && (!integer || Number.isInteger(step))) return step * 4;
  }
  return 40 * p;
}

function drawSavings(stats) {
  const points = stats.series.points;
  const f = frame($("chart-savings"));
  let spend = 0, cf = 0;
  const cum = points.map((p) => ({ t: p.t, spend: (spend += p.spend_usd), cf: (cf += p.counterfactual_usd) }));
  const maxY = niceMax(Math.max(cf, spend));
  const usd = (v) => "$" + (maxY < 0.01 ? v.toFixed(4) : maxY < 1 ? v.toFixed(3) : v.toFixed(2));
  axes(f, maxY, points, stats.series.step_s, usd);
  const { svg, w, h, left, right, top, bottom } = f;
  const n = Math.max(1, cum.length);
  const x = (i) => left + ((w - left - right) * (i + 0.5)) / n;
  const y = (v) => top + (h - top - bottom) * (1 - v / maxY);
  for (const [key, color, fillOpacity] of [["cf", "#adb5bd", 0.18], ["spend", "#12b886", 0.28]]) {
    if (!cum.length) break;
    const line = cum.map((p, i) => `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
    const area = `${x(0).toFixed(1)},${y(0)} ${line} ${x(cum.length - 1).toFixed(1)},${y(0)}`;
    svg.append(svgNode("polygon", { points: area, fill: color, "fill-opacity": fillOpacity }));
    svg.append(svgNode("polyline", {
      points: line, fill: "none", stroke: color, "stroke-width": 2,
      "stroke-dasharray": key === "cf" ? "5 4" : "",
    }));
  }
}

function drawMix(stats) {
  const points = stats.series.points;
  const f = frame($("chart-mix"));
  const total = (p) => TIERS.reduce((s, k) => s + p[k], 0) + p.errors;
  const maxY = niceMax(Math.max(1, ...points.map(total)), true);
  axes(f, maxY, points, stats.series.step_s, (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
  const { svg, w, h, left, right, top, bottom } = f;
  const slot = (w - left - right) / Math.max(1, points.length);
  const bw = Math.max(1, Math.min(28, slot * 0.72));
  points.forEach((p, i) => {
    let base = 0;
    for (const key of [...TIERS, "errors"]) {
      const v = p[key];
      if (!v) continue;
      const y0 = top + (h - top - bottom) * (1 - base / maxY);
      const y1 = top + (h - top - bottom) * (1 - (base + v) / maxY);
      const rect = svgNode("rect", {
        x: (left + slot * i + (slot - bw) / 2).toFixed(1), y: y1.toFixed(1), width: bw.toFixed(1),
        height: Math.max(0.5, y0 - y1).toFixed(1), fill: COLORS[key], rx: 1.5,
      });
      const tip = svgNode("title", {});
      tip.textContent = `${timeLabel(p.t, stats.series.step_s)} · ${key}: ${v}`;
      rect.append(tip);
      svg.append(rect);
      base += v;
    }
  });
  const step = stats.series.step_s;
  $("series-step").textContent = `requests per ${step >= 86400 ? "day" : step >= 3600 ? "hour" : step >= 60 ? step / 60 + " min" : step + " s"}`;
}

function renderTierMix(stats) {
  const box = $("tier-mix");
  box.textContent = "";
  const stack = el("div", { class: "stack" });
  for (const k of TIERS) {
    const share = stats.tier_mix[k].share_pct;
    if (share <= 0) continue;
    const segment = el("div", { title: `${k}: ${share}%` });
    Object.assign(segment.style, { width: share + "%", background: COLORS[k] });
    stack.append(segment);
  }
  box.append(stack);
  for (const k of TIERS) {
    box.append(el("div", { class: "row" },
      el("span", { class: "name" }, el("span", { class: `sw ${k}` }), k),
      el("span", { class: "count" }, stat(`tier_mix.${k}.requests`), " req"),
      el("span", { class: "share" }, stat(`tier_mix.${k}.share_pct`, "%"))));
  }
}

function renderLatency() {
  const t = $("latency");
  t.textContent = "";
  const rows = [["Total", "p50_ms", "p99_ms"], ["Gateway overhead", "overhead_p50_ms", "overhead_p99_ms"],
    ["Routing decision", "route_p50_ms", "route_p99_ms"], ["Time to first token", "ttft_p50_ms", "ttft_p99_ms"]];
  t.append(el("tr", {}, el("td", {}, ""), el("td", { class: "num" }, "p50"), el("td", { class: "num" }, "p99")));
  for (const [name, a, b] of rows) {
    t.append(el("tr", {}, el("td", {}, name), el("td", { class: "num" }, stat(`latency.${a}`)),
      el("td", { class: "num" }, stat(`latency.${b}`))));
  }
}

function renderDepartments(stats) {
  const box = $("departments");
  box.textContent = "";
  const rows = stats.by_department;
  if (!rows.length) box.append(el("div", { class: "empty" }, "No requests in this period."));
  const maxCf = Math.max(1e-12, ...rows.map((r) => Math.max(r.counterfactual_usd, r.spend_usd)));
  rows.forEach((r, i) => {
    const p = `by_department.${i}`;
    const budget = r.budgets && r.budgets[0];
    const track = el("div", { class: "track" });
    if (budget) {
      const used = budget.used_pct;
      const bar = el("div", { class: "spent" + (used >= 100 ? " over" : used >= 80 ? " warn" : "") });
      bar.style.width = Math.min(100, used) + "%";
      track.append(bar);
    } else {
      const cf = el("div", { class: "cf" });
      cf.style.width = (100 * r.counterfactual_usd) / maxCf + "%";
      const bar = el("div", { class: "spent" });
      bar.style.width = (100 * r.spend_usd) / maxCf + "%";
      track.append(cf, bar);
    }
    const dept = el("div", { class: "dept" },
      el("div", { class: "head" }, el("b", {}, stat(`${p}.department`)),
        el("span", { class: "fig" }, "$", stat(`${p}.spend_usd`), " spent · $", stat(`${p}.counterfactual_usd`),
          " always-frontier · ", stat(`${p}.savings_pct`, "%"), " saved · ", stat(`${p}.requests`), " req")),
      track);
    (r.budgets || []).forEach((b, j) => {
      const q = `${p}.budgets.${j}`;
      dept.append(el("div", { class: "budget" }, stat(`${q}.period`), " budget: $", stat(`${q}.spent_usd`),
        " of $", stat(`${q}.limit_usd`), " (", stat(`${q}.used_pct`, "%"), " used, $", stat(`${q}.remaining_usd`),
        " left)"));
    });
    if (!budget) dept.append(el("div", { class: "budget" }, "no budget set (grey: always-frontier cost)"));
    box.append(dept);
  });
}

function renderDecisions(stats) {
  const list = $("decisions");
  list.textContent = "";
  const recent = stats.decisions.recent;
  if (!recent.length) list.append(el("li", { class: "empty" }, "No policy decisions yet."));
  recent.forEach((d, i) => {
    const codes = el("span", {});
    d.decisions.forEach((c) => codes.append(el("code", {}, c), " "));
    list.append(el("li", {}, el("span", { class: "when" }, timeLabel(d.ts, 1)),
      el("span", {}, stat(`decisions.recent.${i}.app`), " / ", stat(`decisions.recent.${i}.department`)), codes));
  });
}

function renderUpstreams(stats) {
  const t = $("upstreams");
  t.textContent = "";
  t.append(el("tr", {}, ...["Deployment", "Provider", "Tier", "Status", "Calls (5 min)", "Error rate", "Calls",
    "Errors", "Last error"].map((h, i) => el("th", { class: i >= 4 && i <= 7 ? "num" : "" }, h))));
  stats.upstreams.forEach((u, i) => {
    const p = `upstreams.${i}`;
    t.append(el("tr", {}, el("td", {}, stat(`${p}.deployment`)), el("td", {}, stat(`${p}.provider`)),
      el("td", {}, stat(`${p}.tier`)),
      el("td", {}, el("span", { class: `pill ${u.status}` }, stat(`${p}.status`))),
      el("td", { class: "num" }, stat(`${p}.recent_calls`)),
      el("td", { class: "num" }, stat(`${p}.recent_error_rate_pct`, "%")),
      el("td", { class: "num" }, stat(`${p}.calls`)), el("td", { class: "num" }, stat(`${p}.errors`)),
      el("td", {}, stat(`${p}.last_error`))));
  });
}

function renderApps(stats) {
  const t = $("apps");
  t.textContent = "";
  t.append(el("tr", {}, el("th", {}, "App"), el("th", {}, "Department"), el("th", { class: "num" }, "Req"),
    el("th", { class: "num" }, "Spend"), el("th", { class: "num" }, "Saved"), el("th", { class: "num" }, "Budget")));
  stats.by_app.forEach((a, i) => {
    const p = `by_app.${i}`;
    const budget = a.budgets && a.budgets.length
      ? el("span", {}, stat(`${p}.budgets.0.used_pct`, "%"), " of ", stat(`${p}.budgets.0.period`))
      : "–";
    t.append(el("tr", {}, el("td", {}, stat(`${p}.app`)), el("td", {}, stat(`${p}.department`)),
      el("td", { class: "num" }, stat(`${p}.requests`)), el("td", { class: "num" }, "$", stat(`${p}.spend_usd`)),
      el("td", { class: "num" }, stat(`${p}.savings_pct`, "%")), el("td", { class: "num" }, budget)));
  });
  if (!stats.by_app.length) t.append(el("tr", {}, el("td", { class: "empty", colSpan: 6 }, "No requests yet.")));
}

function renderControls(stats) {
  const periods = $("periods");
  periods.textContent = "";
  for (const p of stats.periods) {
    const b = el("button", { class: p === state.period ? "on" : "", type: "button" }, p);
    b.onclick = () => { state.period = p; refresh(); };
    periods.append(b);
  }
  for (const [id, key, rows] of [["department", "department", stats.by_department], ["app", "app", stats.by_app]]) {
    const select = $(id);
    const known = new Set([...select.options].map((o) => o.value));
    for (const r of rows) if (!known.has(r[key])) { select.append(el("option", { value: r[key] }, r[key])); known.add(r[key]); }
    select.value = state[key];
  }
}

function render(stats) {
  renderControls(stats);
  renderTierMix(stats);
  renderLatency();
  renderDepartments(stats);
  renderDecisions(stats);
  renderUpstreams(stats);
  renderApps(stats);
  fill(document, stats);
  drawSavings(stats);
  drawMix(stats);
  $("source").textContent = stats.source;
  document.body.dataset.generatedAt = stats.generated_at;
  document.body.dataset.period = stats.period;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const q = new URLSearchParams({ period: state.period });
  if (state.app) q.set("app", state.app);
  if (state.department) q.set("department", state.department);
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  try {
    const resp = await fetch("/admin/stats?" + q, { headers, cache: "no-store" });
    const body = await resp.json();
    if (!resp.ok) throw new Error((body.error && body.error.message) || resp.statusText);
    render(body);
    $("error").hidden = true;
    $("live").classList.remove("stale");
    $("updated").textContent = "live · " + new Date().toLocaleTimeString();
    document.body.dataset.ready = "true";
  } catch (e) {
    $("error").hidden = false;
    $("error").textContent = "Could not load /admin/stats: " + e.message;
    $("live").classList.add("stale");
  }
  timer = setTimeout(refresh, state.refreshMs);
}

$("department").onchange = (e) => { state.department = e.target.value; refresh(); };
$("app").onchange = (e) => { state.app = e.target.value; refresh(); };
window.addEventListener("resize", () => refresh());
refresh();
