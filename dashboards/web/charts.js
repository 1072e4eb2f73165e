// Hand-written SVG charts: a time series with limit bands, alarm periods and event marks; bars for daily ranges.

import { s, h } from "./dom.js";
import { fmtTime, siteDate, siteMidnight, fmt1 } from "./i18n.js";

export const COLORS = ["#4fc3f7", "#ffb74d", "#ce93d8", "#aed581", "#f48fb1", "#fff176"];
const BUCKET = { "1m": 60, "1h": 3600, "1d": 86400 };
const PAD = { left: 46, right: 14, top: 16, bottom: 26 };

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

function timeTicks(from, to, width) {
  const span = to - from;
  const wanted = Math.max(2, Math.floor(width / 90));
  const steps = [3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  const step = steps.find((candidate) => span / candidate <= wanted) || 2592000;
  const ticks = [];
  let at = siteMidnight(siteDate(from));
  if (step >= 86400) {
    for (let day = at; day <= to && ticks.length < 200; day = siteMidnight(siteDate(day + step + 7200))) {
      if (day >= from) ticks.push(day);
    }
  } else {
    for (; at <= to && ticks.length < 400; at += step) if (at >= from) ticks.push(at);
  }
  return { ticks, step };
}

/** Rows split into runs without gaps: a gap is a missing mean or a jump longer than 2.5 buckets. */
function runs(rows, agg) {
  let bucket = BUCKET[agg];
  if (!bucket) {
    const gaps = [];
    for (let i = 1; i < rows.length && gaps.length < 200; i++) gaps.push(rows[i][0] - rows[i - 1][0]);
    gaps.sort((a, b) => a - b);
    bucket = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 60;
  }
  const out = [];
  let current = [];
  let last = null;
  for (const row of rows) {
    const usable = typeof row[1] === "number";
    if (!usable || (last != null && row[0] - last > 2.5 * bucket)) {
      if (current.length) out.push(current);
      current = [];
    }
    if (usable) { current.push(row); last = row[0]; }
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * A chart of one quantity. series: [{point, rows, agg}], band: {min, max}, periods: [{start, end, title, priority}],
 * events: [{ts, title}]. Returns the <svg> (with `testid`); redraw with a new width by calling again.
 */
export function timeChart({ testid, width, height = 260, from, to, series, band, periods = [], events = [], unit, label }) {
  const w = Math.max(280, Math.floor(width));
  const plot = { x0: PAD.left, x1: w - PAD.right, y0: PAD.top, y1: height - PAD.bottom };
  let lo = Infinity;
  let hi = -Infinity;
  for (const one of series) {
    for (const row of one.rows) {
      if (row[0] < from || row[0] > to) continue;
      for (const v of [row[1], row[2], row[3]]) if (typeof v === "number") { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
  }
  for (const v of [band?.min, band?.max]) if (typeof v === "number") { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  const margin = Math.max((hi - lo) * 0.08, 0.5);
  lo -= margin; hi += margin;
  const x = (ts) => plot.x0 + ((ts - from) / (to - from)) * (plot.x1 - plot.x0);
  const y = (v) => plot.y1 - ((v - lo) / (hi - lo)) * (plot.y1 - plot.y0);
  const clampX = (ts) => x(Math.min(to, Math.max(from, ts)));

  const svg = s("svg", { testid, class: "chart", viewBox: `0 0 ${w} ${height}`, width: w, height,
    role: "img", "aria-label": label, "data-series": series.length });
  svg.append(s("title", { text: label }));
  const clip = `clip-${testid}`;
  svg.append(s("defs", {}, s("clipPath", { id: clip },
    s("rect", { x: plot.x0, y: plot.y0, width: plot.x1 - plot.x0, height: plot.y1 - plot.y0 }))));
  const layer = s("g", { "clip-path": `url(#${clip})` });

  // Limit bands: inside the limits quietly green, outside red.
  if (typeof band?.max === "number") {
    layer.append(s("rect", { class: "band-out", x: plot.x0, y: plot.y0, width: plot.x1 - plot.x0,
      height: Math.max(0, y(band.max) - plot.y0) }));
  }
  if (typeof band?.min === "number") {
    layer.append(s("rect", { class: "band-out", x: plot.x0, y: y(band.min), width: plot.x1 - plot.x0,
      height: Math.max(0, plot.y1 - y(band.min)) }));
  }
  if (typeof band?.min === "number" && typeof band?.max === "number") {
    layer.append(s("rect", { class: "band-ok", x: plot.x0, y: y(band.max), width: plot.x1 - plot.x0,
      height: Math.max(0, y(band.min) - y(band.max)) }));
  }
  // Alarm periods.
  for (const period of periods) {
    const start = Math.max(from, period.start);
    const end = Math.min(to, period.end ?? to);
    if (end <= start) continue;
    layer.append(s("rect", { class: `alarm-period prio-${period.priority}`, x: x(start), y: plot.y0,
      width: Math.max(2, x(end) - x(start)), height: plot.y1 - plot.y0, "data-testid": "alarm-period" },
    s("title", { text: period.title })));
  }

  // Grid and axes.
  const grid = s("g", { class: "grid" });
  const yStep = niceStep(hi - lo, 5);
  for (let v = Math.ceil(lo / yStep) * yStep; v <= hi; v += yStep) {
    grid.append(s("line", { x1: plot.x0, x2: plot.x1, y1: y(v), y2: y(v) }));
    grid.append(s("text", { class: "tick", x: plot.x0 - 6, y: y(v) + 4, "text-anchor": "end",
      text: Number.isInteger(yStep) ? v.toFixed(0) : v.toFixed(1) }));
  }
  const { ticks, step } = timeTicks(from, to, w);
  for (const ts of ticks) {
    const midnight = Math.abs(ts - siteMidnight(siteDate(ts))) < 60;
    grid.append(s("line", { x1: x(ts), x2: x(ts), y1: plot.y0, y2: plot.y1, class: midnight ? "midnight" : "" }));
    grid.append(s("text", { class: "tick", x: x(ts), y: height - 8, "text-anchor": "middle",
      text: step >= 86400 || midnight ? fmtTime(ts, "date") : fmtTime(ts, "time") }));
  }
  grid.append(s("text", { class: "tick unit", x: 4, y: 11, text: unit }));
  svg.append(grid, layer);

  // Limit lines on top of the bands.
  for (const v of [band?.min, band?.max]) {
    if (typeof v !== "number") continue;
    layer.append(s("line", { class: "limit-line", x1: plot.x0, x2: plot.x1, y1: y(v), y2: y(v) }));
    svg.append(s("text", { class: "limit-label", x: plot.x1 - 4, y: y(v) - 4, "text-anchor": "end", text: `${v}` }));
  }

  // Series: min–max envelope for aggregates, the mean as a line.
  series.forEach((one, i) => {
    const color = COLORS[i % COLORS.length];
    for (const run of runs(one.rows, one.agg)) {
      if (one.agg !== "raw" && run.length > 1) {
        const top = run.map((r) => `${x(r[0]).toFixed(1)},${y(r[3] ?? r[1]).toFixed(1)}`);
        const bottom = run.slice().reverse().map((r) => `${x(r[0]).toFixed(1)},${y(r[2] ?? r[1]).toFixed(1)}`);
        layer.append(s("polygon", { class: "envelope", points: [...top, ...bottom].join(" "), fill: color }));
      }
      if (run.length === 1) {
        layer.append(s("circle", { cx: x(run[0][0]), cy: y(run[0][1]), r: 2.5, fill: color }));
      } else {
        layer.append(s("polyline", { class: "line", stroke: color,
          points: run.map((r) => `${x(r[0]).toFixed(1)},${y(r[1]).toFixed(1)}`).join(" ") }));
      }
    }
  });

  // Events: marks along the top edge.
  for (const event of events) {
    if (event.ts < from || event.ts > to) continue;
    const ex = clampX(event.ts);
    svg.append(s("g", { class: `event-mark kind-${event.kind}`, "data-testid": "event-mark" },
      s("title", { text: event.title }),
      s("line", { x1: ex, x2: ex, y1: plot.y0, y2: plot.y1 }),
      s("path", { d: `M${ex - 5},${plot.y0 - 10} L${ex + 5},${plot.y0 - 10} L${ex},${plot.y0 - 2} Z` })));
  }
  svg.append(s("rect", { class: "frame", x: plot.x0, y: plot.y0, width: plot.x1 - plot.x0, height: plot.y1 - plot.y0 }));

  // Hover read-out.
  const cursor = s("line", { class: "cursor", y1: plot.y0, y2: plot.y1, visibility: "hidden" });
  const readout = s("text", { class: "readout", x: plot.x0 + 6, y: plot.y0 + 14 });
  svg.append(cursor, readout);
  svg.addEventListener("pointermove", (e) => {
    const box = svg.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * w;
    if (px < plot.x0 || px > plot.x1) return;
    const ts = from + ((px - plot.x0) / (plot.x1 - plot.x0)) * (to - from);
    const values = series.map((one) => nearest(one.rows, ts)).filter(Boolean);
    cursor.setAttribute("x1", px); cursor.setAttribute("x2", px); cursor.setAttribute("visibility", "visible");
    readout.textContent = `${fmtTime(ts, "minute")}  ${values.map((r) => `${fmt1(r[1])}`).join(" / ")} ${unit}`;
  });
  svg.addEventListener("pointerleave", () => { cursor.setAttribute("visibility", "hidden"); readout.textContent = ""; });
  return svg;
}

function nearest(rows, ts) {
  let lo = 0;
  let hi = rows.length - 1;
  if (hi < 0) return null;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (rows[mid][0] < ts) lo = mid; else hi = mid;
  }
  const best = Math.abs(rows[lo][0] - ts) <= Math.abs(rows[hi][0] - ts) ? rows[lo] : rows[hi];
  return typeof best[1] === "number" ? best : null;
}

/** A legend: one swatch per series. */
export function legend(series) {
  return h("ul", { class: "legend" }, ...series.map((one, i) =>
    h("li", {}, h("span", { class: "swatch", style: `background:${COLORS[i % COLORS.length]}` }), one.point)));
}

/** A horizontal bar of a daily range against its allowance (the allowance at 80 % of the width). */
export function rangeBar(value, allowance) {
  const full = allowance > 0 ? allowance / 0.8 : Math.max(value || 0, 1);
  const width = 120;
  const over = typeof value === "number" && typeof allowance === "number" && value > allowance;
  return s("svg", { class: "range-bar", viewBox: `0 0 ${width} 12`, width, height: 12, "aria-hidden": "true" },
    s("rect", { class: "track", x: 0, y: 2, width, height: 8, rx: 2 }),
    typeof value === "number" ? s("rect", { class: over ? "fill over" : "fill", x: 0, y: 2, rx: 2, height: 8,
      width: Math.min(width, (value / full) * width) }) : null,
    typeof allowance === "number" ? s("line", { class: "allow", x1: width * 0.8, x2: width * 0.8, y1: 0, y2: 12 }) : null);
}
