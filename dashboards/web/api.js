// The HTTP API: fetch with the login token, the session (localStorage + cookie for EventSource), the live stream.

const TOKEN_KEY = "stackwatch_token";
const COOKIE = "stackwatch_token";
const STALE_AFTER_MS = 10_000; // readings arrive about once a second; ten seconds of silence is a lost connection
const RECONNECT_MS = 5_000;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail || `HTTP ${status}`;
  }
}

let unauthorized = () => {};
const active = new Set(); // AbortControllers of requests under way

/** Drop every request under way (logging out: their answers no longer matter). */
export function abortAll() {
  for (const controller of active) controller.abort();
  active.clear();
}

/** Called on any 401: the token expired or was revoked; the app shows the login screen. */
export function onUnauthorized(handler) { unauthorized = handler; }

export function getToken() { return localStorage.getItem(TOKEN_KEY); }

export function saveSession(session) {
  localStorage.setItem(TOKEN_KEY, session.token);
  const maxAge = session.expires ? Math.max(0, Math.floor(session.expires - Date.now() / 1000)) : null;
  document.cookie = `${COOKIE}=${session.token}; path=/; SameSite=Strict${maxAge != null ? `; max-age=${maxAge}` : ""}`;
}

export function clearSession() {
  localStorage.removeItem(TOKEN_KEY);
  document.cookie = `${COOKIE}=; path=/; SameSite=Strict; max-age=0`;
}

function detailOf(body, status) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) return detail.map((d) => `${d.where}: ${d.problem}`).join("; ");
  if (typeof detail === "string") return detail;
  return `HTTP ${status}`;
}

/** JSON from the API; throws ApiError (after telling the app on 401). */
export async function api(path, { method = "GET", body, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  active.add(controller);
  let response;
  let data = null;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "same-origin", signal: controller.signal });
    if (response.status !== 204) {
      const text = await response.text();
      try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
    }
  } catch (error) {
    throw new ApiError(0, String(error && error.message ? error.message : error));
  } finally {
    active.delete(controller);
  }
  if (!response.ok) {
    if (response.status === 401 && auth) unauthorized();
    throw new ApiError(response.status, detailOf(data, response.status));
  }
  return data;
}

export const get = (path) => api(path);
export const post = (path, body) => api(path, { method: "POST", body: body ?? {} });

export async function login(username, password) {
  const session = await api("/api/v1/auth/login", { method: "POST", body: { username, password }, auth: false });
  saveSession(session);
  return session;
}

export async function logout() {
  try { await api("/api/v1/auth/logout", { method: "POST", auth: true }); } catch { /* gone anyway */ }
  clearSession();
}

/**
 * The live stream (`/api/v1/stream`, cookie auth) with a watchdog: `state` is "live" while readings keep
 * arriving, "stale" after an error or ten seconds without a message. A closed stream is reopened.
 */
export class LiveStream {
  constructor({ onReadings, onAlarm, onState, onReconnect }) {
    Object.assign(this, { onReadings, onAlarm, onState, onReconnect });
    this.state = "stale";
    this.last = 0; // ms of the last message; 0: none yet
    this.source = null;
    this.timer = null;
    this.retryAt = 0;
  }

  start() {
    this.open();
    this.timer = setInterval(() => this.check(), 1000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.source) this.source.close();
    this.source = null;
  }

  open() {
    if (this.source) this.source.close();
    const source = new EventSource("/api/v1/stream");
    this.source = source;
    this.opened = Date.now();
    source.addEventListener("readings", (e) => {
      this.alive();
      let data = [];
      try { data = JSON.parse(e.data); } catch { /* ignore a malformed batch */ }
      this.onReadings(data);
    });
    source.addEventListener("alarm", (e) => {
      this.alive();
      let data = null;
      try { data = JSON.parse(e.data); } catch { /* ignore */ }
      if (data) this.onAlarm(data);
    });
    source.onerror = () => {
      this.set("stale");
      if (source.readyState === EventSource.CLOSED) this.retryAt = Date.now() + RECONNECT_MS;
    };
  }

  alive() {
    const wasStale = this.state !== "live";
    this.last = Date.now();
    this.set("live");
    if (wasStale && this.onReconnect) this.onReconnect();
  }

  check() {
    const now = Date.now();
    const since = now - (this.last || this.opened);
    if (since > STALE_AFTER_MS) this.set("stale");
    // Closed by the browser (e.g. 401), or open but silent for long: start a fresh connection.
    if ((this.retryAt && now >= this.retryAt) || since > 3 * STALE_AFTER_MS) {
      this.retryAt = 0;
      this.last = 0;
      this.open();
    }
  }

  set(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }
}
