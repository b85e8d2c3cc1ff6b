// Statistics (GET /api/v1/statistics?group_by=month|county|kind): cases per month,
// the county ranking, average hours per step and the filing rate, as inline SVG.
import { get, procedure } from "../api.js";
import { h, clear, percent } from "../dom.js";
import { t, label } from "../i18n.js";
import { columns, bars } from "../charts.js";
import { KINDS, panel, errorNote } from "./common.js";

export async function statsView(_params, ctx) {
  const start = h("input", { type: "date", id: "stats-start", name: "start" });
  const end = h("input", { type: "date", id: "stats-end", name: "end" });
  const kind = h("select", { id: "stats-kind", name: "kind" },
    KINDS.map((k) => h("option", { value: k }, label("kind", k))));
  const body = h("div", { class: "stats-body" });

  const load = async () => {
    const range = { start: start.value, end: end.value };
    try {
      const [byMonth, byCounty, byKind] = await Promise.all(["month", "county", "kind"].map((g) =>
        get("/statistics", { group_by: g, ...range })));
      const table = await procedure(kind.value).catch(() => null);
      if (!ctx.alive()) return;
      clear(body).append(render(byMonth, byCounty, byKind, kind.value, table));
    } catch (err) {
      if (ctx.alive()) clear(body).append(errorNote(err));
    }
  };
  for (const el of [start, end, kind]) el.addEventListener("change", load);
  await load();
  return h("div", { class: "stats" },
    h("div", { class: "page-head" }, h("h1", {}, t("stats.title")), h("div", { class: "spacer" }),
      h("label", { class: "filter" }, h("span", {}, t("stats.start")), start),
      h("label", { class: "filter" }, h("span", {}, t("stats.end")), end),
      h("label", { class: "filter" }, h("span", {}, t("stats.kind")), kind)),
    body);
}

function render(byMonth, byCounty, byKind, kind, table) {
  const sum = (key) => byKind.reduce((a, g) => a + (g[key] || 0), 0);
  const chosen = byKind.find((g) => g.kind === kind) || {};
  const tiles = h("div", { class: "tiles", id: "stats-tiles" },
    tile(t("stats.total"), sum("count")), tile(t("stats.open"), sum("open")),
    tile(t("stats.overdue"), sum("overdue"), sum("overdue") ? "overdue" : ""),
    tile(`${t("stats.filing")} · ${label("kind", "criminal_referral")}`,
      percent(byKind.find((g) => g.kind === "criminal_referral")?.filing_rate)));

  const months = columns({
    ariaLabel: t("stats.by_month"),
    data: byMonth.map((g) => ({ label: g.month, parts: [
      { value: g.overdue, cls: "bar-overdue", name: t("stats.overdue") },
      { value: g.open - g.overdue, cls: "bar-open", name: t("stats.open") },
      { value: g.count - g.open, cls: "bar-closed", name: t("stats.closed") }] })),
    legend: [{ cls: "bar-overdue", name: t("stats.overdue") }, { cls: "bar-open", name: t("stats.open") },
      { cls: "bar-closed", name: t("stats.closed") }],
  });

  const ranking = bars({
    ariaLabel: t("stats.by_county"),
    data: [...byCounty].sort((a, b) => b.count - a.count).map((g) => ({
      label: label("county", g.county), value: g.count,
      text: `${g.count}${t("stats.cases")}${g.overdue ? ` · ${t("stats.overdue")} ${g.overdue}` : ""}`,
      cls: g.overdue ? "bar-overdue" : "bar" })),
  });

  const order = (table?.table || []).map((r) => r.command);
  const hours = Object.entries(chosen.hours_per_step || {})
    .sort(([a], [b]) => (order.indexOf(a) - order.indexOf(b)) || a.localeCompare(b));
  const steps = bars({
    ariaLabel: t("stats.per_step"),
    data: hours.map(([command, value]) => ({ label: label("command", command), value,
      text: `${value.toFixed(value < 10 ? 2 : 1)} ${t("stats.hours")}` })),
  });

  const rates = byCounty.filter((g) => g.filing_rate !== null && g.filing_rate !== undefined)
    .sort((a, b) => b.filing_rate - a.filing_rate);
  const filing = bars({
    ariaLabel: t("stats.filing_rate"), max: 1,
    data: rates.map((g) => ({ label: label("county", g.county), value: g.filing_rate, text: percent(g.filing_rate), cls: "bar-rate" })),
  });

  return h("div", {},
    tiles,
    h("div", { class: "columns" },
      h("div", { class: "col" }, panel(t("stats.by_month"), months), panel(`${t("stats.per_step")} · ${label("kind", kind)}`, steps)),
      h("div", { class: "col" }, panel(t("stats.by_county"), ranking), panel(t("stats.filing_rate"), filing))));
}

function tile(name, value, cls) {
  return h("div", { class: ["tile", cls] }, h("div", { class: "tile-value" }, String(value)), h("div", { class: "tile-name" }, name));
}
