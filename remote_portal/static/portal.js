// The portal page: live updates from /events (SSE), rendered with textContent only.
// A_WEB_XSS: every string from the instrument is attacker-controlled; nothing here
// parses it as HTML (no innerHTML, no insertAdjacentHTML, no eval). The page's CSP
// allows scripts from this origin only.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function byId(id) { return document.getElementById(id); }

function setText(id, value) {
  const el = byId(id);
  if (el) { el.textContent = value === null || value === undefined ? "-" : String(value); }
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) { td.className = cls; }
  row.appendChild(td);
  return td;
}

function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }

function fmt(x, digits) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "-";
}

function when(t) {
  return typeof t === "number" ? new Date(t * 1000).toISOString() : "-";
}

function renderIndication(ind) {
  if (!ind) { return; }
  setText("vm", fmt(ind.vm, 4));
  setText("vb", ind.vb === null ? "unavailable: " + (ind.vb_unavailable || "") : fmt(ind.vb, 4));
  setText("record", ind.record_seq);
  setText("sensor", ind.sensor_id);
  setText("ind-time", when(ind.time));
}

function renderState(st) {
  if (!st) { return; }
  setText("state", st.state);
  setText("event-counter", st.event_counter);
  const reasons = byId("reasons");
  clear(reasons);
  for (const r of st.reasons || []) {
    const li = document.createElement("li");
    li.textContent = String(r);
    reasons.appendChild(li);
  }
  setText("paired", (st.paired_sensors || []).join(", ") || "none");
  const t7 = st.t7_ms || {};
  setText("t7", "p50 " + fmt(t7.p50, 1) + " ms · p99 " + fmt(t7.p99, 1) + " ms · max " + fmt(t7.max, 1) + " ms");
}

function renderComponents(components) {
  const body = byId("software").tBodies[0];
  clear(body);
  for (const c of components || []) {
    const tr = document.createElement("tr");
    tr.dataset.component = String(c.id);
    cell(tr, c.id, "mono");
    cell(tr, c.kind);
    cell(tr, c.online ? "online" : "offline", c.online ? "ok" : "bad");
    cell(tr, c.software_id, "mono software-id");
    const status = String(c.approval);
    cell(tr, status, status === "approved" ? "ok" : (status === "NOT APPROVED" ? "bad" : "muted"));
    const detail = Object.entries(c.detail || {}).map(([k, v]) => k + "=" + String(v)).join("; ");
    cell(tr, detail, "mono detail");
    body.appendChild(tr);
  }
}

function polyline(svg, points, cls, xmin, xmax, ymin, ymax) {
  const w = 600, h = 160, pad = 6;
  const xs = xmax > xmin ? xmax - xmin : 1;
  const ys = ymax > ymin ? ymax - ymin : 1;
  const coords = [];
  for (const [x, y] of points) {
    if (typeof x !== "number" || typeof y !== "number" || !Number.isFinite(y)) { continue; }
    const px = pad + (x - xmin) / xs * (w - 2 * pad);
    const py = h - pad - (y - ymin) / ys * (h - 2 * pad);
    coords.push(px.toFixed(1) + "," + py.toFixed(1));
  }
  const line = document.createElementNS(SVG_NS, "polyline");
  line.setAttribute("class", cls);
  line.setAttribute("points", coords.join(" "));
  svg.appendChild(line);
}

function chart(svgId, rangeId, rows, unit) {
  const svg = byId(svgId);
  clear(svg);
  const a = [], b = [];
  for (const r of rows || []) {
    if (!Array.isArray(r) || r.length < 3) { continue; }
    a.push([r[0], r[1]]);
    if (r[2] !== null) { b.push([r[0], r[2]]); }
  }
  if (a.length === 0) { setText(rangeId, "no data yet"); return; }
  const xs = a.map((p) => p[0]);
  const ys = a.concat(b).map((p) => p[1]).filter((y) => typeof y === "number" && Number.isFinite(y));
  const xmin = Math.min(...xs), xmax = Math.max(...xs);
  const ymin = Math.min(...ys), ymax = Math.max(...ys);
  polyline(svg, a, "vm", xmin, xmax, ymin, ymax);
  polyline(svg, b, "vb", xmin, xmax, ymin, ymax);
  setText(rangeId, a.length + " points, " + fmt(ymin, 3) + " … " + fmt(ymax, 3) + " " + unit);
}

function renderLogbook(lb) {
  if (!lb) { return; }
  const tag = byId("logbook-status");
  tag.textContent = String(lb.status);
  tag.className = "tag " + (lb.status === "verified" ? "ok-tag" : "bad-tag");
  setText("logbook-message", lb.message);
  const cp = lb.checkpoint;
  setText("checkpoint", cp ? "size " + cp.size + ", root " + cp.root + ", " + (cp.timestamp || "") + ", " + cp.origin : "-");
  const body = byId("logbook").tBodies[0];
  clear(body);
  const entries = (lb.entries || []).slice().reverse();
  for (const e of entries) {
    const tr = document.createElement("tr");
    cell(tr, e.index);
    cell(tr, e.time, "mono");
    cell(tr, e.type, e.legally_relevant ? "bad" : "");
    cell(tr, e.event_counter);
    cell(tr, e.included ? "yes" : "NO", e.included ? "ok" : "bad");
    cell(tr, e.data, "mono logbook-data");
    body.appendChild(tr);
  }
}

function render(snap) {
  setText("instrument", snap.instrument);
  setText("revision", snap.revision);
  setText("connected", snap.connected ? "connected to the broker" : "broker not reachable");
  renderIndication(snap.indication);
  renderState(snap.state);
  renderComponents(snap.components);
  chart("chart-values", "values-range", snap.history && snap.history.values, "m³");
  chart("chart-t7", "t7-range", snap.history && snap.history.t7, "ms");
  renderLogbook(snap.logbook);
}

function onSnapshot(event) {
  let snap;
  try { snap = JSON.parse(event.data); } catch (err) { return; }
  render(snap);
}

function start() {
  const source = new EventSource("/events");
  source.addEventListener("snapshot", onSnapshot);
  source.onerror = () => { setText("connected", "reconnecting…"); };
}

document.addEventListener("DOMContentLoaded", start);
