// DOM helpers. Every text from the API goes in as a text node (never as HTML).
import { t, lang } from "./i18n.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("a", {href: "#/x", class: "c"}, "text", child, [more]) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// ------------------------------------------------------------------ time

const TZ = "Asia/Shanghai";

export function formatTime(iso, withSeconds = false) {
  if (!iso) return "—";
  const d = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");  // naive = UTC
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", second: withSeconds ? "2-digit" : undefined, hour12: false,
  }).format(d);
}

/** 93784 s -> "1天2小时" / "1d 2h"; minutes only under an hour. */
export function formatDuration(seconds) {
  const abs = Math.abs(Math.round(seconds));
  const d = Math.floor(abs / 86400), hr = Math.floor((abs % 86400) / 3600),
    m = Math.floor((abs % 3600) / 60);
  const parts = [];
  if (d) parts.push(d + t("unit.day"));
  if (hr && parts.length < 2) parts.push(hr + t("unit.hour"));
  if (!d && m && parts.length < 2) parts.push(m + t("unit.minute"));
  if (!parts.length) parts.push("0" + t("unit.minute"));
  return parts.join(lang() === "en" ? " " : "");
}

export function ageOf(iso) {
  if (!iso) return null;
  return (Date.now() - new Date(iso).getTime()) / 1000;
}

export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
