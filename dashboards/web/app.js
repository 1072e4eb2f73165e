// The dashboard: session, shared state, data refresh, live stream, router and the page frame.

import { LiveStream, get, getToken, logout, onUnauthorized, clearSession, abortAll, ApiError } from "./api.js";
import { t, getLang, setLang, setZone, fmtTime, fmtAge } from "./i18n.js";
import { h, setText, setAttr, icon } from "./dom.js";
import { AlarmSound } from "./sound.js";
import { mountLogin } from "./login.js";
import { mountOverview } from "./overview.js";
import { AlarmBanner, mountAlarmList, mountJournal } from "./alarms.js";
import { mountRoom } from "./room.js";

const $ = (id) => document.getElementById(id);
const ACTING_ROLES = new Set(["operator", "admin"]);

/** What every view reads; views never fetch the shared lists themselves. */
export const state = {
  me: null, site: null, rooms: [], alarms: [], connection: "stale", lastLive: 0, connectingUntil: 0,
  roomsAt: 0, alarmsAt: 0, actedAt: 0, kiosk: false,
};

const listeners = new Set(); // views' update functions, called after each refresh
let view = null;
let stream = null;
let banner = null;
let sound = null;
let pollTimer = null;
let tickTimer = null;

export const ctx = {
  state,
  canAct: () => !state.kiosk && !!state.me && ACTING_ROLES.has(state.me.role),
  refresh: (what) => scheduleRefresh(what),
  acted: () => { state.actedAt = Date.now(); },
  roomName: (id) => state.rooms.find((r) => r.id === id)?.name ?? id ?? "",
  buildingName: (id) => state.site?.buildings.find((b) => b.id === id)?.name ?? id ?? "",
};

// ---- data ---------------------------------------------------------------------------------------------------

let pending = { rooms: false, alarms: false };
let debounce = null;
let inFlight = null;

function scheduleRefresh(what = { rooms: true, alarms: true }) {
  pending.rooms ||= !!what.rooms;
  pending.alarms ||= !!what.alarms;
  if (!debounce) debounce = setTimeout(runPending, 300);
}

async function runPending() {
  debounce = null;
  if (inFlight) { await inFlight.catch(() => {}); }
  const what = pending;
  pending = { rooms: false, alarms: false };
  if (what.rooms || what.alarms) await refresh(what).catch(() => {});
}

async function refresh(what = { rooms: true, alarms: true }) {
  if (!state.me) return;
  const started = Date.now();
  const job = (async () => {
    const [rooms, alarms] = await Promise.all([
      what.rooms ? get("/api/v1/rooms") : null,
      what.alarms ? get("/api/v1/alarms?state=active") : null,
    ]);
    if (rooms) { state.rooms = rooms; state.roomsAt = Date.now(); }
    // A list asked for before an acknowledgement would undo the row's new state for a moment: ask again.
    if (alarms && started < state.actedAt) scheduleRefresh({ alarms: true });
    else if (alarms) { state.alarms = alarms; state.alarmsAt = Date.now(); if (sound) sound.update(alarms); }
    notify();
  })();
  inFlight = job;
  try { await job; } finally { if (inFlight === job) inFlight = null; }
}

function notify() {
  if (banner) banner.update();
  for (const listener of listeners) {
    try { listener(); } catch (error) { console.warn("view update failed", error); }
  }
}

export function subscribe(listener) { listeners.add(listener); return () => listeners.delete(listener); }

// ---- live stream --------------------------------------------------------------------------------------------

function startStream() {
  state.connectingUntil = Date.now() + 5000;
  stream = new LiveStream({
    onReadings: (readings) => {
      state.lastLive = Date.now();
      if (readings.length) scheduleRefresh({ rooms: true });
      for (const listener of readingListeners) listener(readings);
    },
    onAlarm: () => { state.lastLive = Date.now(); scheduleRefresh({ rooms: true, alarms: true }); },
    onState: (next) => { state.connection = next; showConnection(); },
    onReconnect: () => scheduleRefresh({ rooms: true, alarms: true }),
  });
  stream.start();
}

const readingListeners = new Set();
export function onReadings(listener) { readingListeners.add(listener); return () => readingListeners.delete(listener); }

function showConnection() {
  const live = state.connection === "live";
  // Just opened, nothing heard yet: not live, but the data was fetched a moment ago; no alarm for 5 s.
  const connecting = !live && !state.lastLive && Date.now() < state.connectingUntil;
  const el = $("connection");
  setAttr(el, "data-state", live ? "live" : "stale");
  el.classList.toggle("connecting", connecting);
  el.replaceChildren(h("span", { class: "dot", "aria-hidden": "true" }), live ? t("live") : connecting ? t("connecting") : t("stale"));
  document.body.classList.toggle("stale", !live && !connecting);
  const bannerEl = $("stale-banner");
  bannerEl.hidden = live || connecting || !state.me;
  if (!live && !connecting) {
    setText(bannerEl, state.lastLive
      ? t("stale_banner", { age: fmtAge((Date.now() - state.lastLive) / 1000) })
      : t("stale_banner_never"));
  }
}

// ---- router -------------------------------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const kioskQuery = new URLSearchParams(location.search).get("kiosk") === "1";
  if (parts[0] === "kiosk") return { name: "overview", kiosk: true };
  if (parts[0] === "alarms" && parts[1]) return { name: "journal", key: parts.slice(1).join("/"), kiosk: false };
  if (parts[0] === "alarms") return { name: "alarms", kiosk: false };
  if (parts[0] === "rooms" && parts[1]) return { name: "room", id: parts[1], kiosk: false };
  return { name: "overview", kiosk: kioskQuery && !parts.length };
}

function route() {
  if (!state.me) return;
  const current = parseRoute();
  const kioskChanged = state.kiosk !== current.kiosk;
  state.kiosk = current.kiosk;
  document.body.classList.toggle("kiosk", state.kiosk);
  if (kioskChanged && banner) banner.rebuild();
  for (const a of document.querySelectorAll(".nav a")) {
    const target = a.getAttribute("href").replace(/^#\/?/, "");
    const active = current.name === "overview" ? target === "" : target === current.name
      || (current.name === "journal" && target === "alarms");
    a.classList.toggle("active", !state.kiosk && active);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  mountView(current);
}

function mountView(current) {
  if (view && view.unmount) view.unmount();
  listeners.clear();
  readingListeners.clear();
  const el = $("view");
  el.replaceChildren();
  window.scrollTo(0, 0);
  if (current.name === "overview") view = mountOverview(el, ctx, { kiosk: current.kiosk });
  else if (current.name === "alarms") view = mountAlarmList(el, ctx);
  else if (current.name === "journal") view = mountJournal(el, ctx, current.key);
  else if (current.name === "room") view = mountRoom(el, ctx, current.id);
  if (view && view.update) subscribe(view.update);
  if (view && view.onReadings) onReadings(view.onReadings);
}

// ---- frame --------------------------------------------------------------------------------------------------

function renderFrame() {
  document.documentElement.lang = getLang();
  document.title = state.site ? `${state.site.name} · stackwatch` : "stackwatch";
  setText($("site-name"), state.site ? state.site.name : "stackwatch");
  setText($("nav-overview"), t("overview"));
  setText($("nav-alarms"), t("alarms"));
  setText($("nav-kiosk"), t("kiosk"));
  setText($("lang-switch"), t("lang"));
  $("lang-switch").setAttribute("aria-label", getLang() === "zh" ? "Switch to English" : "切换到中文");
  setText($("logout"), t("logout"));
  if (state.me) setText($("whoami"), `${state.me.user} · ${t(`role_${state.me.role}`)}`);
  showSound(sound ? sound.isSounding() : false);
  showConnection();
  tick();
}

let anyLoud = false;
function showSound(sounding, loud = anyLoud) {
  anyLoud = loud;
  const button = $("silence-button");
  const silenced = !sounding && loud;
  button.classList.toggle("sounding", sounding);
  button.classList.toggle("quiet", !sounding && !loud);
  setAttr(button, "data-sounding", sounding ? "true" : "false");
  setAttr(button, "aria-pressed", silenced ? "true" : "false");
  button.replaceChildren(icon(sounding ? "speaker" : silenced ? "mute" : "bell"),
    h("span", { class: "label" }, silenced ? t("silenced") : t("silence")));
}

function tick() {
  setText($("clock"), state.site ? fmtTime(Date.now() / 1000, "clock") : "");
  if (banner) banner.tick();
  if (state.connection !== "live" && state.me) showConnection();
}

async function enter(me) {
  state.me = me;
  document.body.classList.remove("booting", "logged-out");
  document.body.classList.add("logged-in");
  try {
    state.site = await get("/api/v1/site");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    state.site = { id: "", name: "stackwatch", timezone: "UTC", buildings: [] };
  }
  setZone(state.site.timezone);
  sound = new AlarmSound((sounding, loud) => showSound(sounding, loud), () => state.kiosk);
  banner = new AlarmBanner($("alarm-banner"), ctx);
  state.kiosk = parseRoute().kiosk;
  renderFrame();
  await refresh().catch(() => {});
  startStream();
  pollTimer = setInterval(() => scheduleRefresh({ rooms: true, alarms: true }), 30_000);
  tickTimer = setInterval(tick, 1000);
  route();
}

function teardown() {
  abortAll();
  if (stream) stream.stop();
  if (sound) sound.stop();
  clearInterval(pollTimer);
  clearInterval(tickTimer);
  clearTimeout(debounce);
  debounce = null;
  if (view && view.unmount) view.unmount();
  view = null; stream = null; sound = null;
  listeners.clear();
  readingListeners.clear();
  state.me = null; state.rooms = []; state.alarms = []; state.connection = "stale"; state.lastLive = 0;
}

function leave(message) {
  teardown();
  if (banner) banner.clear();
  banner = null;
  document.body.classList.remove("logged-in", "booting", "stale", "kiosk");
  document.body.classList.add("logged-out");
  $("stale-banner").hidden = true;
  renderFrame();
  mountLogin($("view"), { message, onSuccess: (session) => enter({ user: session.user, role: session.role }) });
}

async function start() {
  setLang(getLang());
  renderFrame();
  onUnauthorized(() => { if (state.me) { clearSession(); leave(t("session_expired")); } });
  $("lang-switch").addEventListener("click", () => {
    setLang(getLang() === "zh" ? "en" : "zh");
    renderFrame();
    if (state.me) { if (banner) banner.rebuild(); route(); } else leave("");
  });
  $("logout").addEventListener("click", async () => {
    teardown(); // stop the stream and polling first: nothing may ask with a token being revoked
    await logout();
    leave("");
  });
  $("silence-button").addEventListener("click", () => { if (sound) sound.silence(); });
  window.addEventListener("hashchange", route);
  if (!getToken()) return leave("");
  try {
    const me = await get("/api/v1/auth/me");
    await enter(me);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      clearSession();
      if (!state.me) leave("");
    } else {
      // The server is unreachable: say so and try again (a wall screen must recover on its own).
      leave(t("login_error", { detail: error.detail || String(error) }));
      setTimeout(() => { if (!state.me && getToken()) location.reload(); }, 10_000);
    }
  }
}

start();
