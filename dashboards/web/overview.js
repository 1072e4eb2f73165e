// Overview: every building and floor with its rooms as tiles; kiosk mode shows one building at a time.

import { t, fmt1, fmtTime } from "./i18n.js";
import { h, setText, setAttr, icon } from "./dom.js";
import { controlByRoom, roomMode } from "./control.js";

const ROTATE_MS = 20_000;
const CONTROL_MS = 10_000; // the control badges: auto, manual, hold, interlock
const FLAGS = [["fire", "tile-fire", "fire"], ["water_leak", "tile-leak", "leak"], ["door_open", "tile-door", "door"]];
const OTHER_FLAGS = ["smoke", "suppression_discharge", "suppression_pre_discharge", "fire_pre_alarm", "fire_trouble", "motion"];

function tile(room) {
  const parts = {
    name: h("span", { class: "tile-name" }),
    icons: h("span", { class: "tile-icons" }),
    temperature: h("span", { testid: "tile-temperature", class: "num" }),
    humidity: h("span", { testid: "tile-humidity", class: "num" }),
    dewpoint: h("span", { testid: "tile-dewpoint" }),
    status: h("span", { class: "tile-status" }),
    extra: h("span", { class: "tile-extra" }),
    dewLabel: h("span", { class: "label" }),
    control: h("span", { testid: "tile-control", class: "ctl-mode tile-control", hidden: true }),
  };
  parts.el = h("a", { testid: "room-tile", class: "tile", href: `#/rooms/${encodeURIComponent(room.id)}`,
    "data-room": room.id, "data-status": room.status },
  h("div", { class: "tile-head" }, h("span", { class: "tile-title" }, parts.name, " ", parts.control), parts.icons),
  h("div", { class: "tile-values" },
    h("div", { class: "reading t" }, parts.temperature, h("span", { class: "unit" }, "°C")),
    h("div", { class: "reading rh" }, parts.humidity, h("span", { class: "unit" }, "%"))),
  h("div", { class: "tile-foot" },
    h("span", { class: "dew" }, parts.dewLabel, " ", parts.dewpoint, h("span", { class: "unit-s" }, " °C")),
    parts.extra, parts.status));
  return parts;
}

function updateControl(parts, controlled) {
  const mode = roomMode(controlled);
  parts.control.hidden = !mode;
  if (!mode) return;
  parts.control.className = `ctl-mode tile-control ctl-mode-${mode}`;
  setAttr(parts.control, "data-mode", mode);
  setText(parts.control, t(`ctl_mode_${mode}`));
  setAttr(parts.control, "title", `${t("control")}: ${t(`ctl_mode_${mode}`)}`);
}

function updateTile(parts, room) {
  setAttr(parts.el, "data-status", room.status);
  parts.el.className = `tile status-${room.status}`;
  setText(parts.name, room.name);
  setText(parts.temperature, fmt1(room.temperature));
  setText(parts.humidity, fmt1(room.humidity));
  setText(parts.dewpoint, fmt1(room.dew_point));
  setText(parts.dewLabel, t("dew_point"));
  setText(parts.status, t(`status_${room.status}`));
  const states = room.states || {};
  const key = FLAGS.map(([flag]) => (states[flag] === true ? flag : "")).join("|");
  if (parts.icons.dataset.key !== key) {
    parts.icons.dataset.key = key;
    parts.icons.replaceChildren(...FLAGS.filter(([flag]) => states[flag] === true).map(([flag, testid, name]) =>
      h("span", { testid, class: `flag flag-${name}`, title: t(flag) }, icon(name, t(flag)))));
  }
  const others = OTHER_FLAGS.filter((flag) => states[flag] === true).map((flag) => t(flag));
  const count = room.alarms && room.alarms.active ? `⚠ ${room.alarms.active}` : "";
  setText(parts.extra, [...others, count].filter(Boolean).join(" · "));
  const title = [room.name, room.profile, t(`status_${room.status}`)].join(" · ");
  setAttr(parts.el, "title", title);
}

function floorsOf(building, rooms) {
  const floors = (building.floors || []).map(String);
  for (const room of rooms) if (room.floor != null && !floors.includes(String(room.floor))) floors.push(String(room.floor));
  return floors;
}

export function mountOverview(el, ctx, { kiosk }) {
  const tiles = new Map(); // room id → tile parts
  const sections = [];
  const heading = h("div", { class: "kiosk-head", hidden: !kiosk });
  const kioskTitle = h("h1", {});
  const kioskPage = h("span", { class: "kiosk-page" });
  const kioskClock = h("span", { class: "kiosk-clock" });
  heading.append(kioskTitle, kioskPage, kioskClock);
  const root = h("div", { class: `overview${kiosk ? " kiosk-view" : ""}`, testid: "overview" }, heading);
  el.append(root);
  let structure = "";
  let shown = 0;
  let control = null; // room id → its control state, when the site has control
  let controlTimer = null;

  async function loadControl() {
    try {
      control = await controlByRoom();
    } catch {
      return; // keep the last badges; the next poll tries again
    }
    if (!control) { clearInterval(controlTimer); controlTimer = null; }
    update();
  }

  function build() {
    const rooms = ctx.state.rooms;
    const buildings = [...(ctx.state.site?.buildings || [])];
    const known = new Set(buildings.map((b) => b.id));
    const strays = rooms.filter((r) => !known.has(r.building));
    if (strays.length) buildings.push({ id: "", name: t("other_floors"), floors: [] });
    const signature = JSON.stringify([buildings.map((b) => b.id), rooms.map((r) => [r.id, r.building, r.floor])]);
    if (signature === structure) return;
    structure = signature;
    for (const section of sections) section.el.remove();
    sections.length = 0;
    tiles.clear();
    for (const building of buildings) {
      const own = rooms.filter((r) => (building.id ? r.building === building.id : !known.has(r.building)));
      const section = { building, el: h("section", { class: "building", "data-building": building.id }) };
      const floors = h("div", { class: "floors" });
      section.el.append(h("h2", { class: "building-name" }, building.name || building.id), floors);
      for (const floor of floorsOf(building, own)) {
        const onFloor = own.filter((r) => String(r.floor) === floor);
        if (!onFloor.length) continue;
        const grid = h("div", { class: "tiles" });
        for (const room of onFloor) {
          const parts = tile(room);
          tiles.set(room.id, parts);
          grid.append(parts.el);
        }
        floors.append(h("div", { class: "floor" }, h("h3", { class: "floor-name" }, t("floor", { floor })), grid));
      }
      const loose = own.filter((r) => r.floor == null);
      if (loose.length) {
        const grid = h("div", { class: "tiles" });
        for (const room of loose) { const parts = tile(room); tiles.set(room.id, parts); grid.append(parts.el); }
        floors.append(h("div", { class: "floor" }, grid));
      }
      sections.push(section);
      root.append(section.el);
    }
  }

  function showKiosk() {
    if (!kiosk || !sections.length) return;
    shown %= sections.length;
    sections.forEach((section, i) => { section.el.hidden = i !== shown; });
    const current = sections[shown].building;
    setText(kioskTitle, current.name || current.id);
    setText(kioskPage, sections.length > 1 ? t("kiosk_building", { i: shown + 1, n: sections.length }) : "");
  }

  function update() {
    build();
    for (const room of ctx.state.rooms) {
      const parts = tiles.get(room.id);
      if (parts) { updateTile(parts, room); updateControl(parts, control?.get(room.id)); }
    }
    showKiosk();
  }

  const rotate = kiosk ? setInterval(() => { shown += 1; showKiosk(); }, ROTATE_MS) : null;
  const clock = kiosk ? setInterval(() => setText(kioskClock, fmtTime(Date.now() / 1000, "datetime")), 1000) : null;
  update();
  loadControl();
  controlTimer = setInterval(loadControl, CONTROL_MS);
  return {
    update,
    unmount() { clearInterval(rotate); clearInterval(clock); clearInterval(controlTimer); },
  };
}
