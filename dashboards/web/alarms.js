// Alarms: the banner on every page, the list (#/alarms), one alarm's journal (#/alarms/{key}) and the actions.

import { get, post, ApiError } from "./api.js";
import { t, cause, fmtTime, fmtAge, fmt1 } from "./i18n.js";
import { h, setText, setAttr } from "./dom.js";

const now = () => Date.now() / 1000;
const ageOf = (alarm) => (alarm.active_since == null ? null : now() - alarm.active_since);
const UNACKED = new Set(["active_unacknowledged", "returned_unacknowledged"]);
const alarmHref = (key) => `#/alarms/${encodeURIComponent(key)}`;
const roomHref = (id) => `#/rooms/${encodeURIComponent(id)}`;

export function valueText(alarm) {
  const unit = alarm.unit || "";
  if (typeof alarm.value !== "number" || (!unit && alarm.limit == null)) return "";
  const value = `${fmt1(alarm.value)}${unit ? ` ${unit}` : ""}`;
  return alarm.limit != null ? `${value} (${t("limit")} ${alarm.limit}${unit ? ` ${unit}` : ""})` : value;
}

function flagsText(alarm) {
  const parts = [];
  if (alarm.acknowledged_by) parts.push(t("acked_by", { user: alarm.acknowledged_by }));
  if (alarm.shelved_until) {
    parts.push(t("shelved_until", { time: fmtTime(alarm.shelved_until, "minute"), user: alarm.shelved_by || "",
      reason: alarm.shelve_reason || "" }));
  }
  if (alarm.suppressed_by) parts.push(t("suppressed", { by: alarm.suppressed_by }));
  if (alarm.out_of_service) parts.push(t("out_of_service"));
  return parts.join(" · ");
}

/** Apply an action's answer at once, before the refresh: the row shows its new state without waiting. */
function applyEvents(ctx, key, events) {
  const alarm = ctx.state.alarms.find((a) => a.key === key);
  if (!alarm || !events || !events.length) return;
  const last = events[events.length - 1];
  alarm.state = last.state || alarm.state;
  if (last.kind === "acknowledged") { alarm.acknowledged_by = last.actor; alarm.ack_comment = last.comment; }
  if (last.kind === "shelved") { alarm.shelved_until = last.until; alarm.shelved_by = last.actor; alarm.shelve_reason = last.comment; }
  if (last.kind === "unshelved") { alarm.shelved_until = null; }
}

/**
 * Acknowledge / shelve / unshelve for one alarm, with inline forms. `prefix` keeps test ids unique per place:
 * "" in the banner (ack-button, ack-comment, ack-submit, shelve-button…), "list-" and "journal-" elsewhere.
 */
function actionsFor(ctx, prefix, key, done) {
  const id = (name) => `${prefix}${name}`;
  const error = h("p", { testid: id("action-error"), class: "form-error", role: "alert", hidden: true });
  const ackButton = h("button", { type: "button", class: "btn act", testid: id("ack-button") }, t("acknowledge"));
  const shelveButton = h("button", { type: "button", class: "btn", testid: id("shelve-button") }, t("shelve"));
  const unshelveButton = h("button", { type: "button", class: "btn", testid: id("unshelve-button") }, t("unshelve"));
  const comment = h("input", { testid: id("ack-comment"), type: "text", maxlength: 1000, placeholder: t("comment"),
    "aria-label": t("comment") });
  const ackSubmit = h("button", { type: "submit", class: "btn act", testid: id("ack-submit") }, t("send_ack"));
  const ackForm = h("form", { class: "inline-form", testid: id("ack-form"), hidden: true },
    comment, ackSubmit, h("button", { type: "button", class: "btn ghost", onclick: () => close() }, t("cancel")));
  const reason = h("input", { testid: id("shelve-reason"), type: "text", maxlength: 1000, required: true,
    placeholder: t("reason"), "aria-label": t("reason") });
  const minutes = h("input", { testid: id("shelve-minutes"), type: "number", min: 1, max: 10080, step: 1, value: 60,
    "aria-label": t("minutes"), class: "minutes" });
  const shelveSubmit = h("button", { type: "submit", class: "btn act", testid: id("shelve-submit") }, t("send_shelve"));
  const shelveForm = h("form", { class: "inline-form", testid: id("shelve-form"), hidden: true },
    reason, h("label", { class: "minutes-label" }, minutes, " ", t("minutes")), shelveSubmit,
    h("button", { type: "button", class: "btn ghost", onclick: () => close() }, t("cancel")));
  const buttons = h("span", { class: "buttons" });
  const el = h("div", { class: "actions" }, buttons, ackForm, shelveForm, error);

  function close() {
    ackForm.hidden = true;
    shelveForm.hidden = true;
    error.hidden = true;
  }
  function fail(failure) {
    error.textContent = failure instanceof ApiError && failure.status === 403 ? t("forbidden")
      : t("refused", { detail: failure.detail || String(failure) });
    error.hidden = false;
  }
  async function run(path, body, button) {
    button.disabled = true;
    try {
      const answer = await post(`/api/v1/alarms/${encodeURIComponent(key)}/${path}`, body);
      ctx.acted();
      applyEvents(ctx, key, answer && answer.events);
      close();
      comment.value = "";
      reason.value = "";
      done();
      ctx.refresh({ alarms: true, rooms: true });
    } catch (failure) {
      fail(failure);
    } finally {
      button.disabled = false;
    }
  }
  ackButton.addEventListener("click", () => { shelveForm.hidden = true; error.hidden = true; ackForm.hidden = false; comment.focus(); });
  shelveButton.addEventListener("click", () => { ackForm.hidden = true; error.hidden = true; shelveForm.hidden = false; reason.focus(); });
  unshelveButton.addEventListener("click", () => run("unshelve", undefined, unshelveButton));
  ackForm.addEventListener("submit", (e) => { e.preventDefault(); run("acknowledge", { comment: comment.value.trim() }, ackSubmit); });
  shelveForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = reason.value.trim();
    const count = Number(minutes.value);
    if (!text) { fail(new ApiError(422, t("reason"))); reason.focus(); return; }
    if (!(count > 0 && count <= 10080)) { fail(new ApiError(422, t("minutes"))); minutes.focus(); return; }
    run("shelve", { reason: text, minutes: count }, shelveSubmit);
  });

  return {
    el,
    update(alarm) {
      // Only the buttons that apply are in the page at all (a test or a screen reader never finds a dead one).
      const canAck = UNACKED.has(alarm.state);
      const shelved = !!alarm.shelved_until;
      if (!canAck) ackForm.hidden = true;
      if (shelved) shelveForm.hidden = true;
      const wanted = [canAck ? ackButton : null, shelved ? unshelveButton : shelveButton].filter(Boolean);
      if (wanted.length !== buttons.children.length || wanted.some((b, i) => buttons.children[i] !== b)) {
        buttons.replaceChildren(...wanted);
      }
    },
  };
}

/** Rows keyed by alarm key, updated in place so that an open form survives the next refresh. */
class KeyedRows {
  constructor(container, create) {
    this.container = container;
    this.create = create;
    this.rows = new Map();
  }

  update(alarms) {
    const seen = new Set();
    let before = null;
    for (const alarm of alarms) {
      seen.add(alarm.key);
      let row = this.rows.get(alarm.key);
      if (!row) { row = this.create(alarm); this.rows.set(alarm.key, row); }
      row.update(alarm);
      const next = before ? before.nextSibling : this.container.firstChild;
      if (next !== row.el) this.container.insertBefore(row.el, next);
      before = row.el;
    }
    for (const [key, row] of this.rows) if (!seen.has(key)) { row.el.remove(); this.rows.delete(key); }
  }

  clear() { this.rows.clear(); this.container.replaceChildren(); }

  forEach(fn) { for (const row of this.rows.values()) fn(row); }
}

function prioBadge(priority) {
  return h("span", { class: `prio prio-${priority}` }, t(`prio_${priority}`));
}

export class AlarmBanner {
  constructor(el, ctx) {
    this.el = el;
    this.ctx = ctx;
    this.expanded = false;
    this.summary = h("span", { class: "banner-summary" });
    this.toggle = h("button", { type: "button", class: "btn ghost banner-toggle", "aria-expanded": "false" });
    this.toggle.addEventListener("click", () => { this.expanded = !this.expanded; this.show(); });
    this.list = h("div", { class: "banner-rows" });
    this.rows = new KeyedRows(this.list, (alarm) => this.row(alarm));
    el.replaceChildren(h("div", { class: "banner-head" }, this.summary, this.toggle), this.list);
  }

  row(alarm) {
    const ctx = this.ctx;
    const parts = {
      prio: h("span", { class: "prio" }),
      what: h("a", { class: "what", href: alarmHref(alarm.key), testid: "journal-link" }),
      where: h("a", { class: "where" }),
      value: h("span", { class: "value" }),
      age: h("span", { class: "age" }),
      stateLabel: h("span", { class: "state" }),
      flags: h("span", { class: "flags" }),
    };
    const actions = ctx.canAct() ? actionsFor(ctx, "", alarm.key, () => this.update()) : null;
    const el = h("div", { testid: "alarm-row", class: "alarm-row", "data-alarm": alarm.key },
      parts.prio, h("span", { class: "text" }, parts.what, parts.where, parts.value, parts.flags),
      parts.stateLabel, parts.age, actions ? actions.el : null);
    let current = alarm;
    return {
      el,
      update: (next) => {
        current = next;
        setAttr(el, "data-priority", next.priority);
        setAttr(el, "data-state", next.state);
        setAttr(el, "data-ticket", next.ticket);
        el.className = `alarm-row prio-row-${next.priority} st-${next.state}${next.shelved_until ? " shelved" : ""}`;
        parts.prio.className = `prio prio-${next.priority}`;
        setText(parts.prio, t(`prio_${next.priority}`));
        setText(parts.what, `#${next.ticket} ${cause(next.cause)}`);
        setAttr(parts.what, "title", next.description || "");
        setText(parts.where, next.room ? ctx.roomName(next.room) : next.source);
        setAttr(parts.where, "href", next.room ? roomHref(next.room) : alarmHref(next.key));
        setText(parts.value, valueText(next));
        setText(parts.flags, flagsText(next));
        setText(parts.stateLabel, t(`st_${next.state}`));
        setText(parts.age, fmtAge(ageOf(next)));
        setAttr(parts.age, "title", fmtTime(next.active_since));
        if (actions) actions.update(next);
      },
      tick: () => {
        setText(parts.age, fmtAge(ageOf(current)));
      },
    };
  }

  update() {
    const alarms = this.ctx.state.alarms;
    this.rows.update(alarms);
    this.show();
  }

  show() {
    const alarms = this.ctx.state.alarms;
    const worst = alarms.length ? alarms[0].priority : "none";
    for (const name of [...this.el.classList]) if (name.startsWith("worst-")) this.el.classList.remove(name);
    this.el.classList.add(`worst-${worst}`);
    this.el.classList.toggle("expanded", this.expanded);
    setAttr(this.el, "data-count", alarms.length);
    setText(this.summary, alarms.length ? t("active_alarms", { n: alarms.length }) : t("no_alarms"));
    this.toggle.hidden = alarms.length < 2;
    setText(this.toggle, this.expanded ? t("show_less") : t("show_all", { n: alarms.length }));
    setAttr(this.toggle, "aria-expanded", this.expanded ? "true" : "false");
  }

  tick() { this.rows.forEach((row) => row.tick()); }

  /** Language, role or kiosk mode changed: rows are made anew. */
  rebuild() { this.rows.clear(); this.update(); }

  clear() {
    this.rows.clear();
    this.el.replaceChildren();
    for (const name of [...this.el.classList]) if (name.startsWith("worst-")) this.el.classList.remove(name);
  }
}

// ---- #/alarms -----------------------------------------------------------------------------------------------

function cell(label, ...content) { return h("td", { "data-label": label }, ...content); }

export function mountAlarmList(el, ctx) {
  const activeBody = h("tbody", {});
  const pastBody = h("tbody", {});
  const empty = h("p", { class: "empty" }, t("no_alarms"));
  const head = (...names) => h("thead", {}, h("tr", {}, ...names.map((n) => h("th", { scope: "col" }, n))));
  el.append(h("div", { class: "alarm-list", testid: "alarm-list" },
    h("h1", {}, t("alarms")),
    empty,
    h("table", { class: "table alarms-table" },
      head(t("priority"), t("cause"), t("room"), t("value"), t("since"), t("age"), t("state"), ""), activeBody),
    h("h2", {}, t("past_alarms")),
    h("table", { class: "table past-table" },
      head(t("time"), t("priority"), t("cause"), t("room"), t("value"), ""), pastBody)));

  const rows = new KeyedRows(activeBody, (alarm) => {
    const parts = {
      prio: h("span", {}), what: h("a", { href: alarmHref(alarm.key) }), desc: h("div", { class: "desc" }),
      room: h("a", {}), value: h("span", {}), since: h("span", {}), age: h("span", {}),
      stateLabel: h("span", {}), flags: h("div", { class: "flags" }),
    };
    const actions = ctx.canAct() ? actionsFor(ctx, "list-", alarm.key, () => update()) : null;
    const tr = h("tr", { testid: "alarm-item", "data-alarm": alarm.key },
      cell(t("priority"), parts.prio), cell(t("cause"), parts.what, parts.desc), cell(t("room"), parts.room),
      cell(t("value"), parts.value), cell(t("since"), parts.since), cell(t("age"), parts.age),
      cell(t("state"), parts.stateLabel, parts.flags),
      cell("", actions ? actions.el : null, h("a", { href: alarmHref(alarm.key), class: "btn ghost" }, t("journal"))));
    return {
      el: tr,
      update(next) {
        setAttr(tr, "data-priority", next.priority);
        setAttr(tr, "data-state", next.state);
        tr.className = `st-${next.state}${next.shelved_until ? " shelved" : ""}`;
        parts.prio.replaceChildren(prioBadge(next.priority));
        setText(parts.what, `#${next.ticket} ${cause(next.cause)}`);
        setText(parts.desc, next.description || "");
        setText(parts.room, next.room ? ctx.roomName(next.room) : next.source);
        setAttr(parts.room, "href", next.room ? roomHref(next.room) : alarmHref(next.key));
        setText(parts.value, valueText(next));
        setText(parts.since, fmtTime(next.active_since, "minute"));
        setText(parts.age, fmtAge(ageOf(next)));
        setText(parts.stateLabel, t(`st_${next.state}`));
        setText(parts.flags, [flagsText(next), next.ack_comment ? `“${next.ack_comment}”` : ""].filter(Boolean).join(" · "));
        if (actions) actions.update(next);
      },
      tick() {},
    };
  });

  let pastAt = 0;
  async function loadPast() {
    pastAt = Date.now();
    try {
      const since = new Date(Date.now() - 7 * 86400_000).toISOString();
      const past = await get(`/api/v1/alarms?state=past&since=${encodeURIComponent(since)}&limit=500`);
      past.sort((a, b) => b.ts - a.ts);
      pastBody.replaceChildren(...past.map((event) => h("tr", { testid: "past-alarm", "data-alarm": event.alarm },
        cell(t("time"), fmtTime(event.ts, "minute")), cell(t("priority"), prioBadge(event.priority)),
        cell(t("cause"), h("a", { href: alarmHref(event.alarm) }, `#${event.ticket} ${cause(event.cause)}`)),
        cell(t("room"), event.room ? h("a", { href: roomHref(event.room) }, ctx.roomName(event.room)) : ""),
        cell(t("value"), valueText(event)),
        cell("", event.message || ""))));
    } catch (failure) {
      pastBody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "form-error" }, failure.detail || String(failure))));
    }
  }

  let alarmsAt = -1;
  function update() {
    if (ctx.state.alarmsAt === alarmsAt) return;
    alarmsAt = ctx.state.alarmsAt;
    rows.update(ctx.state.alarms);
    empty.hidden = ctx.state.alarms.length > 0;
    if (Date.now() - pastAt > 10_000) loadPast();
  }
  update();
  return { update };
}

// ---- #/alarms/{key} -----------------------------------------------------------------------------------------

export function mountJournal(el, ctx, key) {
  const header = h("div", { class: "journal-head" });
  const body = h("tbody", {});
  const table = h("table", { class: "table journal-table", testid: "alarm-journal" },
    h("thead", {}, h("tr", {}, ...[t("time"), t("kind"), t("state"), t("actor"), t("comment"), t("detail")]
      .map((n) => h("th", { scope: "col" }, n)))), body);
  const error = h("p", { class: "form-error", hidden: true });
  const actions = ctx.canAct() ? actionsFor(ctx, "journal-", key, () => load()) : null;
  el.append(h("div", { class: "journal", testid: "journal-view", "data-alarm": key },
    h("p", {}, h("a", { href: "#/alarms", class: "back" }, `← ${t("alarms")}`)),
    header, actions ? h("div", { class: "journal-actions" }, actions.el) : null, error,
    h("h2", {}, t("journal")), table));

  let alarmsAt = -1;
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    try {
      const alarm = await get(`/api/v1/alarms/${encodeURIComponent(key)}`);
      error.hidden = true;
      header.replaceChildren(
        h("h1", {}, prioBadge(alarm.priority), " ", `#${alarm.ticket} ${cause(alarm.cause)}`),
        h("dl", { class: "facts" },
          h("dt", {}, t("room")), h("dd", {}, alarm.room ? h("a", { href: roomHref(alarm.room) }, ctx.roomName(alarm.room)) : "—"),
          h("dt", {}, t("source")), h("dd", {}, alarm.source || "—"),
          h("dt", {}, t("state")), h("dd", { testid: "journal-state", "data-state": alarm.state }, t(`st_${alarm.state}`)),
          h("dt", {}, t("value")), h("dd", {}, valueText(alarm) || "—"),
          h("dt", {}, t("since")), h("dd", {}, alarm.active_since ? `${fmtTime(alarm.active_since)} (${fmtAge(now() - alarm.active_since)})` : "—"),
          alarm.ack_comment ? [h("dt", {}, t("comment")), h("dd", {}, alarm.ack_comment)] : null,
          flagsText(alarm) ? [h("dt", {}, ""), h("dd", {}, flagsText(alarm))] : null),
        h("p", { class: "desc" }, alarm.description || ""));
      if (actions) actions.update(alarm);
      const events = [...(alarm.journal || [])].sort((a, b) => b.seq - a.seq);
      body.replaceChildren(...events.map((event) => h("tr", { testid: "journal-row", "data-kind": event.kind },
        cell(t("time"), fmtTime(event.ts)),
        cell(t("kind"), h("span", { class: `kind kind-${event.kind}` }, t(`k_${event.kind}`)), " ",
          h("code", {}, event.kind)),
        cell(t("state"), t(`st_${event.state}`)),
        cell(t("actor"), event.actor || ""),
        cell(t("comment"), event.comment || (event.until ? fmtTime(event.until, "minute") : "")),
        cell(t("detail"), [valueText(event), event.message].filter(Boolean).join(" — ")))));
    } catch (failure) {
      error.textContent = failure instanceof ApiError && failure.status === 404 ? `${t("not_found")}: ${key}`
        : failure.detail || String(failure);
      error.hidden = false;
    } finally {
      loading = false;
    }
  }

  function update() {
    if (ctx.state.alarmsAt === alarmsAt) return;
    alarmsAt = ctx.state.alarmsAt;
    load();
  }
  update();
  return { update };
}
