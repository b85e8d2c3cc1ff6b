// Small inline-SVG charts (no library): stacked columns and horizontal bars. Colours
// come from CSS classes (console.css), labels are text nodes, each mark has a <title>.
import { h, s } from "./dom.js";
import { t } from "./i18n.js";

const W = 640;

function niceMax(value) {
  if (value <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

function empty() {
  return h("p", { class: "muted chart-empty" }, t("stats.no_data"));
}

/**
 * Vertical stacked columns. data: [{label, parts: [{value, cls, name}]}];
 * legend: [{cls, name}].
 */
export function columns({ data, legend, ariaLabel }) {
  if (!data.length) return empty();
  const H = 260, top = 16, bottom = 40, left = 44, right = 8;
  const totals = data.map((d) => d.parts.reduce((a, p) => a + p.value, 0));
  let max = niceMax(Math.max(...totals));
  if (max % 4 && totals.every(Number.isInteger)) max = Math.ceil(Math.max(...totals) / 4) * 4;  // whole ticks
  const plotH = H - top - bottom, plotW = W - left - right;
  const step = plotW / data.length, bw = Math.min(48, step * 0.6);
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": ariaLabel });
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    svg.append(s("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid-line" }),
      s("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  data.forEach((d, i) => {
    const x = left + step * i + (step - bw) / 2;
    let base = 0;
    for (const part of d.parts) {
      if (!part.value) continue;
      svg.append(s("rect", { x, y: y(base + part.value), width: bw, height: (part.value / max) * plotH, class: part.cls },
        s("title", {}, `${d.label} · ${part.name}: ${part.value}`)));
      base += part.value;
    }
    svg.append(s("text", { x: x + bw / 2, y: y(totals[i]) - 4, class: "value", "text-anchor": "middle" }, totals[i]),
      s("text", { x: x + bw / 2, y: H - bottom + 16, class: "axis", "text-anchor": "middle" }, d.label));
  });
  return h("figure", { class: "chart-box" }, svg, legendOf(legend));
}

/**
 * Horizontal bars, one per row. data: [{label, value, text, cls}]; max defaults to the
 * largest value (use 1 for rates).
 */
export function bars({ data, max, ariaLabel, legend }) {
  if (!data.length) return empty();
  const row = 26, top = 6, left = 150, right = 70;
  const H = top * 2 + row * data.length;
  const top1 = max ?? niceMax(Math.max(...data.map((d) => d.value)));
  const plotW = W - left - right;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": ariaLabel });
  data.forEach((d, i) => {
    const y = top + row * i;
    const w = top1 ? Math.max(d.value > 0 ? 2 : 0, (d.value / top1) * plotW) : 0;
    svg.append(
      s("text", { x: left - 8, y: y + row / 2 + 4, class: "axis", "text-anchor": "end" }, d.label),
      s("rect", { x: left, y: y + 4, width: plotW, height: row - 8, class: "track" }),
      s("rect", { x: left, y: y + 4, width: w, height: row - 8, class: d.cls || "bar" },
        s("title", {}, `${d.label}: ${d.text ?? d.value}`)),
      s("text", { x: left + w + 6, y: y + row / 2 + 4, class: "value" }, d.text ?? d.value));
  });
  return h("figure", { class: "chart-box" }, svg, legendOf(legend));
}

function legendOf(items) {
  if (!items?.length) return null;
  return h("figcaption", { class: "legend" },
    items.map((it) => h("span", { class: "legend-item" },
      s("svg", { viewBox: "0 0 10 10", width: 10, height: 10, "aria-hidden": "true" },
        s("rect", { width: 10, height: 10, class: it.cls })), ` ${it.name}`)));
}
