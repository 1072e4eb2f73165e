// One room (#/rooms/{id}): current values and points, limits, charts with bands and alarm periods, daily ranges.

import { get, ApiError } from "./api.js";
import { t, cause, fmt1, fmtTime, fmtAge, siteDate, siteMidnight } from "./i18n.js";
import { h, setText, icon } from "./dom.js";
import { timeChart, legend, rangeBar } from "./charts.js";
import { mountControl } from "./control.js";

const DAY = 86400;
const RANGES = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY };
const iso = (seconds) => new Date(seconds * 1000).toISOString();
const TEMPERATURE_CAUSES = (c) => c.startsWith("temperature");
const HUMIDITY_CAUSES = (c) => c.startsWith("humidity") || c === "mould_risk" || c === "condensation_risk";

function aggFor(span) {
  if (span <= 2 * DAY) return "1m";
  if (span <= 92 * DAY) return "1h";
  return "1d";
}

/** Which chart shows an alarm's period: its own quantity's, or both for fire, water, comms and the like. */
function onChart(quantity, alarmCause) {
  if (alarmCause === "calibration_due") return false;
  if (TEMPERATURE_CAUSES(alarmCause)) return quantity === "temperature";
  if (HUMIDITY_CAUSES(alarmCause)) return quantity === "humidity";
  return true;
}

/** Activation periods (raised/reactivated … returned/cleared) and events, from each alarm's journal. */
function periodsOf(journal, alarm, end) {
  const periods = [];
  let open = null;
  for (const event of [...journal].sort((a, b) => a.seq - b.seq)) {
    if ((event.kind === "raised" || event.kind === "reactivated") && open == null) open = event;
    if ((event.kind === "returned" || event.kind === "cleared") && open != null) {
      periods.push({ start: open.ts, end: event.ts, ticket: open.ticket });
      open = null;
    }
  }
  if (open != null) periods.push({ start: open.ts, end: null, ticket: open.ticket });
  return periods.map((p) => ({
    ...p, cause: alarm.cause, priority: alarm.priority,
    title: `#${p.ticket} ${cause(alarm.cause)}: ${fmtTime(p.start, "minute")} – ${p.end ? fmtTime(p.end, "minute") : t("ongoing")}`,
    end: p.end ?? end,
  }));
}

export function mountRoom(el, ctx, roomId) {
  let room = null;
  let range = "24h";
  let custom = null; // {from, to} epoch seconds
  let data = null; // the loaded history and alarms, kept for redraws
  let roomAt = 0;
  let timer = null;
  let generation = 0;

  const title = h("h1", {});
  const where = h("p", { class: "muted" });
  const statusBadge = h("span", { class: "status-badge" });
  const now = h("div", { class: "room-now" });
  const controlCard = h("section", { class: "card", testid: "control-state" }, h("h2", {}, t("control")),
    h("p", { class: "muted" }, t("no_control")));
  const limitsBox = h("div", { class: "limits" });
  const alarmsBox = h("ul", { class: "room-alarms" });
  const pointsBody = h("tbody", {});
  const chartsState = h("p", { class: "muted charts-state" });
  const tChart = h("div", { class: "chart-box" });
  const rhChart = h("div", { class: "chart-box" });
  const dailyBody = h("tbody", {});
  const periodsList = h("ul", { class: "periods" });
  const fromInput = h("input", { type: "date", testid: "range-from", "aria-label": t("from") });
  const toInput = h("input", { type: "date", testid: "range-to", "aria-label": t("to") });
  const rangeError = h("span", { class: "form-error", hidden: true });
  const rangeButtons = Object.keys(RANGES).map((key) => h("button", { type: "button", class: "btn seg",
    testid: `range-${key}`, "data-range": key, onclick: () => { range = key; custom = null; loadHistory(); } },
  t(`range_${key}`)));
  const customForm = h("form", { class: "custom-range" },
    h("span", {}, t("range_custom")), h("label", {}, t("from"), " ", fromInput), h("label", {}, t("to"), " ", toInput),
    h("button", { type: "submit", class: "btn seg", testid: "range-apply" }, t("apply")), rangeError);
  customForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!fromInput.value || !toInput.value) return;
    const from = siteMidnight(fromInput.value);
    const to = siteMidnight(toInput.value) + DAY;
    rangeError.hidden = from < to;
    rangeError.textContent = t("bad_range");
    if (from >= to) return;
    range = "custom";
    custom = { from, to };
    loadHistory();
  });

  el.append(h("div", { class: "room", testid: "room-view", "data-room": roomId },
    h("p", {}, h("a", { href: "#/", class: "back" }, `← ${t("overview")}`)),
    h("header", { class: "room-head" }, h("div", {}, title, where), statusBadge),
    now,
    h("div", { class: "room-grid" },
      h("section", { class: "card" }, h("h2", {}, t("limits")), limitsBox),
      h("section", { class: "card" }, h("h2", {}, t("room_alarms")), alarmsBox),
      controlCard),
    h("section", { class: "card charts" },
      h("div", { class: "range-bar-row" }, h("div", { class: "segmented" }, ...rangeButtons), customForm),
      chartsState,
      h("h2", {}, t("temperature"), " (°C)"), tChart,
      h("h2", {}, t("humidity"), " (%)"), rhChart),
    h("div", { class: "room-grid two" },
      h("section", { class: "card" }, h("h2", {}, t("daily_table")),
        h("table", { class: "table daily", testid: "daily-range" },
          h("thead", {}, h("tr", {}, h("th", {}, t("day")), h("th", {}, `ΔT (K)`), h("th", {}, `ΔRH (%)`))), dailyBody)),
      h("section", { class: "card" }, h("h2", {}, t("alarm_periods")), periodsList)),
    h("section", { class: "card" }, h("h2", {}, t("points")),
      h("table", { class: "table points", testid: "room-points" },
        h("thead", {}, h("tr", {}, ...[t("point"), t("value"), t("quality"), t("age")].map((n) => h("th", {}, n)))),
        pointsBody))));

  // ---- current state ----

  function limitText(limits, lo, hi, unit) {
    const a = limits[lo]?.value;
    const b = limits[hi]?.value;
    return `${a ?? "—"} – ${b ?? "—"} ${unit}`;
  }

  function showRoom() {
    if (!room) return;
    setText(title, room.name);
    setText(where, `${t("location", { building: ctx.buildingName(room.building), floor: room.floor ?? "—" })} · ${t("profile")}: ${room.profile}`);
    statusBadge.className = `status-badge status-${room.status}`;
    statusBadge.dataset.status = room.status;
    setText(statusBadge, t(`status_${room.status}`));
    const states = room.states || {};
    const flags = ["fire", "water_leak", "door_open", "smoke", "motion", "fire_pre_alarm", "fire_trouble",
      "suppression_pre_discharge", "suppression_discharge"].filter((f) => states[f] === true);
    const iconFor = { fire: "fire", water_leak: "leak", door_open: "door" };
    now.replaceChildren(
      h("div", { class: "big-reading" }, h("span", { class: "label" }, t("temperature")),
        h("span", {}, h("span", { class: "num", testid: "room-temperature" }, fmt1(room.temperature)), h("span", { class: "unit" }, " °C"))),
      h("div", { class: "big-reading" }, h("span", { class: "label" }, t("humidity")),
        h("span", {}, h("span", { class: "num", testid: "room-humidity" }, fmt1(room.humidity)), h("span", { class: "unit" }, " %"))),
      h("div", { class: "big-reading" }, h("span", { class: "label" }, t("dew_point")),
        h("span", {}, h("span", { class: "num", testid: "room-dewpoint" }, fmt1(room.dew_point)), h("span", { class: "unit" }, " °C"))),
      h("div", { class: "room-flags" }, ...flags.map((f) => h("span", { class: `flag flag-${iconFor[f] || "other"}` },
        iconFor[f] ? icon(iconFor[f]) : null, t(f)))));
    const limits = room.limits || {};
    const sources = [...new Set(Object.values(limits).map((l) => l && l.source).filter(Boolean))];
    limitsBox.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, t("temperature")), h("dd", { title: limits.t_min?.source || "" }, limitText(limits, "t_min", "t_max", "°C")),
      h("dt", {}, t("humidity")), h("dd", { title: limits.rh_min?.source || "" }, limitText(limits, "rh_min", "rh_max", "%")),
      h("dt", {}, t("daily_range")), h("dd", { title: limits.t_daily_range?.source || "" },
        `ΔT ≤ ${limits.t_daily_range?.value ?? "—"} K · ΔRH ≤ ${limits.rh_daily_range?.value ?? "—"} %`)),
    h("ul", { class: "sources" }, ...sources.map((src) => h("li", {}, src))));
    const points = room.points || [];
    pointsBody.replaceChildren(...points.map((p) => {
      const value = typeof p.value === "boolean" ? t(p.value ? "yes" : "no")
        : typeof p.value === "number" ? `${Number.isInteger(p.value) ? p.value : p.value.toFixed(2)}${p.unit ? ` ${p.unit}` : ""}`
          : p.value == null ? "—" : String(p.value);
      return h("tr", { class: p.fresh ? "" : "not-fresh", "data-point": p.point, "data-fresh": p.fresh ? "true" : "false" },
        h("td", { "data-label": t("point") }, h("span", { class: "point-key" }, p.point), h("span", { class: "muted" }, ` ${t(p.quantity) !== p.quantity ? t(p.quantity) : p.quantity}`)),
        h("td", { "data-label": t("value"), class: "num-cell" }, value),
        h("td", { "data-label": t("quality") }, h("span", { class: `quality q-${p.quality || "none"}` }, p.quality ? t(`q_${p.quality}`) : "—"),
          p.fresh ? "" : ` (${t("fresh_no")})`),
        h("td", { "data-label": t("age"), title: p.ts ? fmtTime(p.ts) : "" }, p.age != null ? fmtAge(p.age) : "—"));
    }));
    showRoomAlarms();
  }

  function showRoomAlarms() {
    const own = ctx.state.alarms.filter((a) => a.room === roomId);
    alarmsBox.replaceChildren(...(own.length ? own.map((a) => h("li", {},
      h("span", { class: `prio prio-${a.priority}` }, t(`prio_${a.priority}`)), " ",
      h("a", { href: `#/alarms/${encodeURIComponent(a.key)}` }, `#${a.ticket} ${cause(a.cause)}`), " ",
      h("span", { class: "muted" }, `${t(`st_${a.state}`)} · ${a.active_since == null ? "—" : fmtAge(Date.now() / 1000 - a.active_since)}`)))
      : [h("li", { class: "muted" }, t("no_alarms"))]));
  }

  async function loadRoom() {
    roomAt = Date.now();
    try {
      room = await get(`/api/v1/rooms/${encodeURIComponent(roomId)}`);
      showRoom();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 404) {
        setText(title, `${t("not_found")}: ${roomId}`);
      }
    }
  }

  // ---- history ----

  function window_() {
    if (range === "custom" && custom) return { ...custom };
    const to = Date.now() / 1000;
    return { from: to - RANGES[range], to };
  }

  async function loadHistory() {
    const mine = ++generation;
    for (const b of rangeButtons) b.classList.toggle("active", b.dataset.range === range);
    const { from, to } = window_();
    const agg = aggFor(to - from);
    if (range !== "custom") { fromInput.value = siteDate(from); toInput.value = siteDate(to); }
    setText(chartsState, t("loading"));
    const dailyFrom = siteMidnight(siteDate(Math.min(from, to - 7 * DAY)));
    const q = (quantity, a, f, tt) => `/api/v1/rooms/${encodeURIComponent(roomId)}/history?quantity=${quantity}`
      + `&from=${encodeURIComponent(iso(f))}&to=${encodeURIComponent(iso(tt))}&agg=${a}`;
    try {
      const [temperature, humidity, tDaily, rhDaily, alarms] = await Promise.all([
        get(q("temperature", agg, from, to)), get(q("humidity", agg, from, to)),
        get(q("temperature", "1d", dailyFrom, to)), get(q("humidity", "1d", dailyFrom, to)),
        loadAlarms(from - 2 * DAY, to).catch(() => ({ periods: [], events: [] })),
      ]);
      if (mine !== generation) return;
      data = { from, to, agg, temperature, humidity, tDaily, rhDaily, alarms };
      setText(chartsState, `${fmtTime(from, "minute")} – ${fmtTime(to, "minute")} · ${agg}`);
      draw();
      showDaily();
      showPeriods();
    } catch (failure) {
      if (mine !== generation) return;
      setText(chartsState, t("history_error", { detail: failure.detail || String(failure) }));
      data = { from, to, agg, temperature: { series: [], limits: room?.limits || {} },
        humidity: { series: [], limits: room?.limits || {} }, tDaily: null, rhDaily: null, alarms: { periods: [], events: [] } };
      draw();
    }
    clearTimeout(timer);
    if (range !== "custom") timer = setTimeout(loadHistory, 60_000);
  }

  async function loadAlarms(since, to) {
    const past = await get(`/api/v1/alarms?state=past&room=${encodeURIComponent(roomId)}&since=${encodeURIComponent(iso(since))}`);
    const keys = [...new Set([...past.map((e) => e.alarm), ...ctx.state.alarms.filter((a) => a.room === roomId).map((a) => a.key)])]
      .slice(0, 40);
    const alarms = await Promise.all(keys.map((key) => get(`/api/v1/alarms/${encodeURIComponent(key)}`).catch(() => null)));
    const periods = [];
    const events = [];
    for (const alarm of alarms.filter(Boolean)) {
      periods.push(...periodsOf(alarm.journal || [], alarm, to));
      for (const e of alarm.journal || []) {
        events.push({ ts: e.ts, kind: e.kind, cause: alarm.cause,
          title: `${fmtTime(e.ts, "minute")} #${e.ticket} ${cause(alarm.cause)}: ${t(`k_${e.kind}`)}${e.actor ? ` (${e.actor})` : ""}${e.comment ? ` “${e.comment}”` : ""}` });
      }
    }
    return { periods, events };
  }

  function chartFor(box, quantity, answer, testid, unit, minKey, maxKey) {
    const limits = answer.limits || room?.limits || {};
    const series = answer.series || [];
    const width = box.clientWidth || el.clientWidth || 800;
    const phone = window.matchMedia("(max-width: 700px)").matches;
    const periods = data.alarms.periods.filter((p) => onChart(quantity, p.cause));
    const events = data.alarms.events.filter((e) => onChart(quantity, e.cause) && e.ts >= data.from && e.ts <= data.to);
    const svg = timeChart({ testid, width, height: phone ? 220 : 280, from: data.from, to: data.to, series, unit,
      band: { min: limits[minKey]?.value, max: limits[maxKey]?.value }, periods, events,
      label: `${t(quantity)} (${unit})` });
    const hasRows = series.some((one) => one.rows.length);
    box.replaceChildren(...[svg, series.length ? legend(series) : null,
      hasRows ? null : h("p", { class: "muted" }, t("no_history"))].filter(Boolean));
  }

  function draw() {
    if (!data) return;
    chartFor(tChart, "temperature", data.temperature, "chart-temperature", "°C", "t_min", "t_max");
    chartFor(rhChart, "humidity", data.humidity, "chart-humidity", "%", "rh_min", "rh_max");
  }

  function dailyRanges(answer) {
    const days = new Map();
    for (const one of answer?.series || []) {
      for (const row of one.rows) {
        if (typeof row[2] !== "number" || typeof row[3] !== "number") continue;
        const day = siteDate(row[0] + 3600);
        days.set(day, Math.max(days.get(day) ?? -Infinity, row[3] - row[2]));
      }
    }
    return days;
  }

  function showDaily() {
    const tDays = dailyRanges(data.tDaily);
    const rhDays = dailyRanges(data.rhDaily);
    const limits = room?.limits || data.temperature.limits || {};
    const tAllow = limits.t_daily_range?.value;
    const rhAllow = limits.rh_daily_range?.value;
    const days = [...new Set([...tDays.keys(), ...rhDays.keys()])].sort().reverse();
    const cellFor = (value, allow) => h("td", { class: typeof value === "number" && value > allow ? "over" : "" },
      rangeBar(value, allow), " ", typeof value === "number" ? value.toFixed(1) : "—", h("span", { class: "muted" }, ` / ${allow ?? "—"}`));
    dailyBody.replaceChildren(...(days.length ? days.map((day) => h("tr", { "data-day": day },
      h("td", {}, fmtTime(siteMidnight(day) + 43200, "day")), cellFor(tDays.get(day), tAllow), cellFor(rhDays.get(day), rhAllow)))
      : [h("tr", {}, h("td", { colspan: 3, class: "muted" }, t("no_history")))]));
  }

  function showPeriods() {
    const shown = data.alarms.periods.filter((p) => p.end >= data.from && p.start <= data.to)
      .sort((a, b) => b.start - a.start);
    periodsList.replaceChildren(...(shown.length ? shown.map((p) => h("li", {},
      h("span", { class: `prio prio-${p.priority}` }, t(`prio_${p.priority}`)), " ", p.title))
      : [h("li", { class: "muted" }, t("none"))]));
  }

  // ---- lifecycle ----

  let resizeFrame = 0;
  let lastWidth = 0;
  const observer = new ResizeObserver(() => {
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(() => {
      const width = tChart.clientWidth;
      if (Math.abs(width - lastWidth) > 8) { lastWidth = width; draw(); }
    });
  });
  observer.observe(tChart);

  loadRoom();
  loadHistory();
  const control = mountControl(controlCard, ctx, roomId);
  return {
    update() {
      showRoomAlarms();
      if (Date.now() - roomAt > 2000) loadRoom();
    },
    unmount() {
      generation += 1;
      clearTimeout(timer);
      control.unmount();
      observer.disconnect();
      cancelAnimationFrame(resizeFrame);
    },
  };
}
