// Climate control in the room view (issue 8): the room's loops, its interlock, every actuator with its command
// and read-back, manual overrides with a reason and an expiry, interlock reset and the recent control log.
// Polled from `/api/v1/control` while the room is open (the live stream carries readings and alarms only).
// Actions send the bearer token (a cookie never acts); only operators and admins see them.

import { get, api, ApiError } from "./api.js";
import { t, fmt1, fmtTime, fmtAge } from "./i18n.js";
import { h, setText, setAttr } from "./dom.js";

const POLL_MS = 4000;
const LOG_ROWS = 20;
const MAX_MINUTES = 7 * 24 * 60;
const UNITS = { humidity: "%", temperature: "°C" };
const enc = encodeURIComponent;

/** One word for a controlled room: interlock, manual, hold or auto (the overview's badge, the panel's head). */
export function roomMode(room) {
  if (!room) return null;
  const lock = room.interlock || {};
  const loops = Object.values(room.loops || {});
  if (lock.fire || lock.latched || lock.leak || lock.leak_latched || loops.some((l) => l.mode === "interlock")) {
    return "interlock";
  }
  if (loops.some((l) => l.mode === "manual" || l.override) || (room.actuators || []).some((a) => a.override)) {
    return "manual";
  }
  if (loops.some((l) => l.mode === "hold")) return "hold";
  return "auto";
}

/** `/api/v1/control` as {room id → room}, or null when the site has no control (or it cannot be read). */
export async function controlByRoom() {
  const answer = await get("/api/v1/control");
  if (!answer || !answer.enabled) return null;
  return new Map((answer.rooms || []).map((room) => [room.room, room]));
}

function modeBadge(mode, testid) {
  return h("span", { class: `ctl-mode ctl-mode-${mode || "none"}`, testid, "data-mode": mode || "" },
    mode ? t(`ctl_mode_${mode}`) : "—");
}

function setBadge(el, mode) {
  el.className = `ctl-mode ctl-mode-${mode || "none"}`;
  setAttr(el, "data-mode", mode || "");
  setText(el, mode ? t(`ctl_mode_${mode}`) : "—");
}

function valueText(actuator, value) {
  if (value == null) return "—";
  if (actuator.kind === "switch") return value >= 0.5 ? t("ctl_on") : t("ctl_off");
  if (actuator.kind === "setpoint") return `${fmt1(value)} °C`;
  return String(value);
}

function periodText(period) {
  if (!period) return t("ctl_period_default");
  const key = `ctl_period_${period}`;
  const text = t(key);
  return text === key ? period : text;
}

function overrideText(override, now) {
  if (!override) return "";
  return t("ctl_override", { who: override.who, reason: override.reason, until: fmtTime(override.until, "minute"),
    left: fmtAge(override.until - now) });
}

function failText(failure) {
  return failure instanceof ApiError && failure.status === 403 ? t("forbidden")
    : t("refused", { detail: failure.detail || String(failure) });
}

/**
 * The manual form of one actuator or loop: value (actuators only), reason (required) and minutes; plus the
 * "Back to automatic" button. `kind` is the actuator's kind, or "loop".
 */
/** What the unit is to the room ("dehumidifier"), else its kind ("switch"). */
function roleText(actuator) {
  for (const key of [`ctl_role_${actuator.role}`, `ctl_kind_${actuator.kind}`]) {
    if (t(key) !== key) return t(key);
  }
  return actuator.role || actuator.kind;
}

function overrideControls(target, kind, done, range) {
  const error = h("p", { class: "form-error", role: "alert", testid: "control-action-error", hidden: true });
  const manualButton = h("button", { type: "button", class: "btn", testid: "control-manual" },
    kind === "loop" ? t("ctl_hold") : t("ctl_manual"));
  const autoButton = h("button", { type: "button", class: "btn act", testid: "control-auto", hidden: true },
    t("ctl_auto"));
  let value = null;
  if (kind === "switch") {
    value = h("select", { testid: "control-override-value", "aria-label": t("value") },
      h("option", { value: "1" }, t("ctl_on")), h("option", { value: "0" }, t("ctl_off")));
  } else if (kind !== "loop") {
    value = h("input", { type: "number", step: "any", testid: "control-override-value", "aria-label": t("value"),
      class: "value-input", required: true,
      ...(range && range.min != null ? { min: range.min } : {}), ...(range && range.max != null ? { max: range.max } : {}) });
  }
  const reason = h("input", { type: "text", maxlength: 1000, required: true, testid: "control-override-reason",
    placeholder: t("reason"), "aria-label": t("reason") });
  const minutes = h("input", { type: "number", min: 1, max: MAX_MINUTES, step: 1, value: 60, class: "minutes",
    testid: "control-override-minutes", "aria-label": t("minutes") });
  const submit = h("button", { type: "submit", class: "btn act", testid: "control-override-submit" },
    t("ctl_send_override"));
  const outranked = h("span", { class: "muted hint", testid: "control-outranked", hidden: true }, t("ctl_outranked"));
  const form = h("form", { class: "inline-form ctl-form", testid: "control-override-form", hidden: true },
    kind === "loop" ? h("span", { class: "muted hint" }, t("ctl_hold_hint"))
      : h("label", { class: "value-label" }, t("value"), " ", value),
    outranked, reason, h("label", { class: "minutes-label" }, minutes, " ", t("minutes")), submit,
    h("button", { type: "button", class: "btn ghost", onclick: () => close() }, t("cancel")));
  const el = h("div", { class: "actions ctl-actions" }, manualButton, autoButton, form, error);

  function close() { form.hidden = true; error.hidden = true; }
  function fail(failure) { error.textContent = failText(failure); error.hidden = false; }

  async function run(button, request) {
    button.disabled = true;
    try {
      await request();
      close();
      reason.value = "";
      done();
    } catch (failure) {
      fail(failure);
    } finally {
      button.disabled = false;
    }
  }

  manualButton.addEventListener("click", () => { error.hidden = true; form.hidden = !form.hidden; if (!form.hidden) reason.focus(); });
  autoButton.addEventListener("click", () => run(autoButton,
    () => api(`/api/v1/control/overrides/${enc(target)}`, { method: "DELETE" })));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = reason.value.trim();
    const count = Number(minutes.value);
    if (!text) { fail(new ApiError(422, t("ctl_reason_needed"))); reason.focus(); return; }
    if (!(count > 0 && count <= MAX_MINUTES)) { fail(new ApiError(422, t("minutes"))); minutes.focus(); return; }
    let held = null;
    if (value) {
      held = Number(value.value);
      if (value.value === "" || !Number.isFinite(held)) { fail(new ApiError(422, t("value"))); value.focus(); return; }
    }
    run(submit, () => api(`/api/v1/control/overrides/${enc(target)}`,
      { method: "PUT", body: { value: held, reason: text, minutes: count } }));
  });

  return {
    el,
    update(item) {
      autoButton.hidden = !item.override;
      // An interlock outranks any operator: the override is kept and takes effect once the room is reset.
      outranked.hidden = !(item.source === "interlock" || item.mode === "interlock");
      // A switch's form starts at the value it does not have now (the usual reason to take it over).
      if (form.hidden && value && kind === "switch") value.value = item.commanded >= 0.5 ? "0" : "1";
      if (form.hidden && value && kind !== "switch" && value.value === "" && item.commanded != null) {
        value.value = String(item.commanded);
      }
    },
  };
}

function loopView(roomId, name, canAct, done) {
  const unit = UNITS[name] || "";
  const parts = {
    mode: modeBadge(null, "control-loop-mode"),
    target: h("dd", { testid: "control-loop-target" }),
    measured: h("dd", { testid: "control-loop-measured" }),
    period: h("dd", { testid: "control-loop-period" }),
    problem: h("p", { class: "ctl-problem", testid: "control-loop-problem", hidden: true }),
    override: h("p", { class: "ctl-override", testid: "control-loop-override", hidden: true }),
  };
  const actions = canAct ? overrideControls(`${roomId}/${name}`, "loop", done) : null;
  const el = h("div", { class: "ctl-loop", testid: `control-loop-${name}`, "data-loop": name },
    h("div", { class: "ctl-head" }, h("h3", {}, t(`ctl_loop_${name}`)), parts.mode),
    h("dl", { class: "facts" },
      h("dt", {}, t("ctl_target")), parts.target,
      h("dt", {}, t("ctl_measured")), parts.measured,
      h("dt", {}, t("ctl_period")), parts.period),
    parts.problem, parts.override, actions ? actions.el : null);
  return {
    el,
    update(loop, now) {
      setBadge(parts.mode, loop.mode);
      setAttr(el, "data-mode", loop.mode);
      setAttr(el, "data-override", loop.override ? loop.override.who : null);
      const band = loop.band ? ` (${fmt1(loop.band[0])} – ${fmt1(loop.band[1])} ${unit})` : "";
      setText(parts.target, loop.target == null ? "—" : `${fmt1(loop.target)} ${unit}${band}`);
      setText(parts.measured, loop.measured == null ? "—" : `${fmt1(loop.measured)} ${unit}`);
      setText(parts.period, periodText(loop.period));
      parts.problem.hidden = !loop.problem;
      setText(parts.problem, loop.problem ? `${t("ctl_problem")}: ${loop.problem}` : "");
      parts.override.hidden = !loop.override;
      setText(parts.override, overrideText(loop.override, now));
      if (actions) actions.update(loop);
    },
  };
}

function actuatorView(actuator, canAct, done) {
  const parts = {
    commanded: h("span", { class: "ctl-value", testid: "control-commanded" }),
    source: h("span", { class: "ctl-source", testid: "control-source" }),
    verify: h("span", { class: "ctl-verify", testid: "control-verify" }),
    reason: h("p", { class: "ctl-reason", testid: "control-reason" }),
    facts: h("p", { class: "muted ctl-facts" }),
    detail: h("p", { class: "form-error ctl-detail", testid: "control-detail", hidden: true }),
    override: h("p", { class: "ctl-override", testid: "control-override", hidden: true }),
  };
  const actions = canAct ? overrideControls(actuator.id, actuator.kind, done, actuator) : null;
  const el = h("div", { class: "ctl-actuator", testid: `control-actuator-${actuator.id}`, "data-actuator": actuator.id },
    h("div", { class: "ctl-head" },
      h("span", { class: "ctl-name" }, h("code", {}, actuator.id), " ",
        h("span", { class: "muted", testid: "control-role" }, roleText(actuator))),
      parts.commanded, parts.source, parts.verify),
    parts.reason, parts.detail, parts.override, parts.facts, actions ? actions.el : null);
  return {
    el,
    update(a, now) {
      setAttr(el, "data-source", a.source || "");
      setAttr(el, "data-state", a.state);
      setAttr(el, "data-commanded", a.commanded == null ? "" : a.commanded);
      setAttr(el, "data-override", a.override ? a.override.who : null);
      el.classList.toggle("failed", a.state === "failed" || a.alarm);
      setText(parts.commanded, valueText(a, a.commanded));
      parts.source.className = `ctl-source src-${a.source || "none"}`;
      setAttr(parts.source, "data-source", a.source || "");
      setText(parts.source, a.source ? t(`ctl_src_${a.source}`) : "");
      parts.source.hidden = !a.source;
      parts.verify.className = `ctl-verify v-${a.state}`;
      setAttr(parts.verify, "data-state", a.state);
      setText(parts.verify, t(`ctl_v_${a.state}`));
      setText(parts.reason, a.reason || "");
      parts.detail.hidden = !(a.detail && (a.state === "failed" || a.state === "retry" || a.alarm));
      setText(parts.detail, a.detail ? `${t("detail")}: ${a.detail}` : "");
      parts.override.hidden = !a.override;
      setText(parts.override, overrideText(a.override, now));
      const facts = [
        a.readback != null ? `${t("ctl_readback")} ${valueText(a, a.readback)}` : null,
        a.issued_at ? t("ctl_issued", { time: fmtTime(a.issued_at, "clock") }) : null,
        a.attempts ? t("ctl_attempts", { n: a.attempts }) : null,
        a.starts != null ? `${t("ctl_starts")} ${a.starts}` : null,
        a.kind === "switch" && a.on_since && a.commanded != null
          ? t(a.commanded >= 0.5 ? "ctl_on_for" : "ctl_off_for", { age: fmtAge(now - a.on_since) }) : null,
      ].filter(Boolean);
      setText(parts.facts, facts.join(" · "));
      if (actions) actions.update(a);
    },
  };
}

/** Fill the room view's control card; returns {unmount}. Rooms without control keep "No climate control". */
export function mountControl(card, ctx, roomId) {
  const canAct = ctx.canAct();
  const title = h("h2", {}, t("control"));
  const head = h("div", { class: "ctl-top" }, title);
  const note = h("p", { class: "muted", testid: "control-none" }, t("loading"));
  const failure = h("p", { class: "form-error", testid: "control-error", hidden: true });
  card.replaceChildren(head, note, failure);
  let panel = null; // built on the first answer that has this room
  let alive = true;
  let running = 0; // requests under way
  let asked = 0; // sequence of loads started
  let shown = 0; // the newest load shown (an older answer never overwrites a newer one)
  let timer = null;
  let soon = null;

  function build(room) {
    const mode = modeBadge(null, "control-mode");
    const updated = h("span", { class: "muted ctl-updated" });
    head.replaceChildren(title, mode, updated);
    card.classList.add("ctl-card");
    const lockText = h("p", { class: "ctl-lock-text", testid: "control-interlock-text" });
    const lockSub = h("p", { class: "ctl-lock-sub" });
    const lockError = h("p", { class: "form-error", role: "alert", testid: "control-reset-error", hidden: true });
    const resetButton = canAct ? h("button", { type: "button", class: "btn danger", testid: "control-reset" }, t("ctl_reset")) : null;
    const resetReason = h("input", { type: "text", maxlength: 1000, testid: "control-reset-reason",
      placeholder: t("ctl_reset_reason"), "aria-label": t("ctl_reset_reason") });
    const resetSubmit = h("button", { type: "submit", class: "btn danger", testid: "control-reset-submit" }, t("ctl_reset_send"));
    const resetForm = h("form", { class: "inline-form", testid: "control-reset-form", hidden: true },
      resetReason, resetSubmit, h("button", { type: "button", class: "btn ghost", onclick: () => { resetForm.hidden = true; } }, t("cancel")));
    const lock = h("div", { class: "ctl-interlock", testid: "control-interlock", role: "status" },
      lockText, lockSub, resetButton, canAct ? resetForm : null, lockError);
    if (resetButton) {
      resetButton.addEventListener("click", () => { lockError.hidden = true; resetForm.hidden = !resetForm.hidden; if (!resetForm.hidden) resetReason.focus(); });
      resetForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        resetSubmit.disabled = true;
        try {
          await api(`/api/v1/control/rooms/${enc(roomId)}/reset`, { method: "POST", body: { reason: resetReason.value.trim() } });
          resetForm.hidden = true;
          resetReason.value = "";
          lockError.hidden = true;
          acted();
        } catch (error) {
          lockError.textContent = failText(error);
          lockError.hidden = false;
        } finally {
          resetSubmit.disabled = false;
        }
      });
    }
    const loops = new Map(Object.keys(room.loops || {}).map((name) => [name, loopView(roomId, name, canAct, acted)]));
    const actuators = new Map((room.actuators || []).map((a) => [a.id, actuatorView(a, canAct, acted)]));
    const logBody = h("tbody", {});
    card.replaceChildren(head, failure, lock,
      h("div", { class: "ctl-loops" }, ...[...loops.values()].map((v) => v.el)),
      h("h3", {}, t("ctl_actuators")),
      h("div", { class: "ctl-actuators", testid: "control-actuators" }, ...[...actuators.values()].map((v) => v.el)),
      h("h3", {}, t("ctl_log")),
      h("div", { class: "ctl-log-wrap" }, h("table", { class: "table ctl-log", testid: "control-log" },
        h("thead", {}, h("tr", {}, ...[t("time"), t("ctl_target_col"), t("kind"), t("value"), t("source"), t("actor"), t("reason")]
          .map((n) => h("th", { scope: "col" }, n)))), logBody)));
    return { signature: signature(room), mode, updated, lock, lockText, lockSub, resetButton, resetForm, loops, actuators, logBody };
  }

  function signature(room) {
    return JSON.stringify([Object.keys(room.loops || {}), (room.actuators || []).map((a) => [a.id, a.kind])]);
  }

  function showLock(il) {
    const fireLatched = il.latched || il.fire;
    const leakLatched = il.leak_latched || il.leak;
    const state = fireLatched ? "fire" : leakLatched ? "leak" : "normal";
    setAttr(panel.lock, "data-state", state);
    setAttr(panel.lock, "data-fire-active", il.fire ? "true" : "false");
    setAttr(panel.lock, "data-awaiting-reset", il.awaiting_reset ? "true" : "false");
    panel.lock.className = `ctl-interlock lock-${state}`;
    const lines = [];
    if (fireLatched) {
      setText(panel.lockText, t("ctl_fire_latched"));
      lines.push(il.fire ? t("ctl_fire_active") : t("ctl_fire_cleared", { time: fmtTime(il.cleared_at, "minute") }));
      if (il.tripped_at) lines.push(t("ctl_tripped", { time: fmtTime(il.tripped_at, "minute"), cause: il.cause || "—" }));
    } else if (leakLatched) {
      setText(panel.lockText, t("ctl_leak_latched"));
    } else {
      setText(panel.lockText, t("ctl_interlock_ok"));
    }
    if (leakLatched) {
      if (fireLatched) lines.push(t("ctl_leak_latched"));
      lines.push(il.leak ? t("ctl_leak_active") : t("ctl_leak_cleared"));
      if (il.leak_cause) lines.push(t("ctl_leak_cause", { cause: il.leak_cause }));
    }
    setText(panel.lockSub, lines.join(" · "));
    panel.lockSub.hidden = !lines.length;
    if (panel.resetButton) {
      const latched = fireLatched || leakLatched;
      panel.resetButton.hidden = !latched;
      const blocked = il.fire || il.leak || !il.awaiting_reset;
      panel.resetButton.disabled = blocked;
      setAttr(panel.resetButton, "title", blocked ? t(il.fire ? "ctl_fire_active" : "ctl_leak_active") : null);
      if (!latched || blocked) panel.resetForm.hidden = true;
    }
  }

  function showLog(rows) {
    const shown = [...rows].reverse().slice(0, LOG_ROWS);
    panel.logBody.replaceChildren(...(shown.length ? shown.map((row) => {
      const actuator = (panel.lastRoom?.actuators || []).find((a) => a.id === row.target);
      const value = row.value == null ? "" : actuator ? valueText(actuator, row.value) : String(row.value);
      const kindKey = `ctl_ev_${row.kind}`;
      return h("tr", { testid: "control-log-row", "data-kind": row.kind, "data-target": row.target, class: `ev-${row.kind}` },
        h("td", { "data-label": t("time") }, fmtTime(row.ts, "datetime")),
        h("td", { "data-label": t("ctl_target_col") }, h("code", {}, row.target)),
        h("td", { "data-label": t("kind") }, h("span", { class: `kind ctl-ev ev-${row.kind}` }, t(kindKey) === kindKey ? row.kind : t(kindKey))),
        h("td", { "data-label": t("value"), class: "num-cell" }, value),
        h("td", { "data-label": t("source") }, row.source ? (t(`ctl_src_${row.source}`) === `ctl_src_${row.source}` ? row.source : t(`ctl_src_${row.source}`)) : ""),
        h("td", { "data-label": t("actor") }, row.who || ""),
        h("td", { "data-label": t("reason") }, row.reason || ""));
    }) : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, t("ctl_log_empty")))]));
  }

  function show(room, now, rows) {
    if (!panel || panel.signature !== signature(room)) panel = build(room);
    panel.lastRoom = room;
    const mode = roomMode(room);
    setBadge(panel.mode, mode);
    setAttr(card, "data-mode", mode);
    setText(panel.updated, t("updated", { time: fmtTime(now, "clock") }));
    showLock(room.interlock || {});
    for (const [name, loop] of Object.entries(room.loops || {})) panel.loops.get(name)?.update(loop, now);
    for (const a of room.actuators || []) panel.actuators.get(a.id)?.update(a, now);
    if (rows) showLog(rows);
  }

  async function load(poll = false) {
    if (!alive || (poll && running)) return;
    const mine = ++asked;
    running += 1;
    try {
      const answer = await get("/api/v1/control");
      if (!alive || mine < shown) return;
      const room = answer && answer.enabled ? (answer.rooms || []).find((r) => r.room === roomId) : null;
      failure.hidden = true;
      card.classList.remove("ctl-stale");
      if (!room) {
        // Not controlled: the plain card, and no more polling.
        setAttr(card, "data-mode", "none");
        note.textContent = t("no_control");
        card.replaceChildren(title, note);
        stop();
        return;
      }
      const rows = await get(`/api/v1/control/log?room=${enc(roomId)}&limit=${LOG_ROWS}`).catch(() => null);
      if (!alive || mine < shown) return;
      shown = mine;
      show(room, answer.now ?? Date.now() / 1000, rows);
    } catch (error) {
      if (!alive || mine < shown) return;
      failure.textContent = t("ctl_unavailable", { detail: error.detail || String(error) });
      failure.hidden = false;
      card.classList.add("ctl-stale");
    } finally {
      running -= 1;
    }
  }

  /** After an action: show its effect now, and once more when the unit's read-back is due. */
  function acted() {
    ctx.acted();
    clearTimeout(soon);
    load();
    soon = setTimeout(load, 1500);
  }

  function stop() { clearInterval(timer); timer = null; }

  load();
  timer = setInterval(() => load(true), POLL_MS);
  return {
    unmount() { alive = false; stop(); clearTimeout(soon); },
  };
}
