// Alert wall (线上+线下联动, issue 17): tasks made from online alerts, refreshed every few
// seconds without a reload, urgent ones highlighted, filters by domain, county and kind,
// a schematic of the 12 counties (inline SVG, no map tiles) with open and overdue tasks
// per county; a task page with its reading, escalations, actions and timeline.
import { get, procedure } from "../api.js";
import { h, s, clear, formatTime } from "../dom.js";
import { t, label } from "../i18n.js";
import { COUNTIES, timeLeft, deadlineLine, panel, pairs, select } from "./common.js";
import { actionsPanel, timelinePanel } from "./parts.js";

const REFRESH_MS = 3000;
const STORM = 20;          // a task that merged this many alerts is a device misbehaving
const ALERT_DOMAINS = ["road", "transport", "port"];
const ALERT_KINDS = ["overlimit_wim", "key_vehicle_dynamic", "illegal_operation_tip", "port_alarm"];
// schematic positions (column, row) of the counties, north at the top
const GRID = {
  yongjia: [1, 0], yueqing: [2, 0], lucheng: [1, 1], ouhai: [0, 1], longwan: [2, 1],
  dongtou: [3, 1], wencheng: [0, 2], ruian: [1, 2], pingyang: [2, 2], taishun: [0, 3],
  cangnan: [1, 3], longgang: [2, 3],
};

export async function alertsView([id], ctx) {
  if (id) return alertDetail(id, ctx);
  const filters = { domain: "", county: "", kind: "" };
  const wall = h("div", { id: "alert-wall" });
  const map = h("div", { class: "county-map", id: "county-map" });
  const status = h("span", { class: "muted small", id: "alert-refreshed" });
  const banner = h("div", { class: "storm-banner", id: "storm-banner", role: "status", hidden: true });
  const bar = h("form", { class: "filters", id: "alert-filters", onsubmit: (e) => e.preventDefault() },
    select("domain", ALERT_DOMAINS.map((d) => ({ value: d, label: label("alert_domain", d) })), ""),
    select("county", COUNTIES.map((c) => ({ value: c, label: label("county", c) })), ""),
    select("kind", ALERT_KINDS.map((k) => ({ value: k, label: label("alert_kind", k) })), ""),
    status);
  let rows = [];
  let intake = null;   // GET /alert-intake: alerts a minute, storm or not
  const draw = () => {
    const shown = rows.filter((r) => (!filters.domain || r.domain === filters.domain)
      && (!filters.county || r.county === filters.county)
      && (!filters.kind || r.alert_kind === filters.kind));
    clear(wall).append(wallTable(shown));
    clear(map).append(countyMap(rows.filter((r) => !filters.domain || r.domain === filters.domain)));
    const storms = rows.filter((r) => r.state !== "closed" && (r.repeats || 0) + 1 >= STORM);
    const rate = intake && intake.storm ? t("alerts.storm_rate", { n: intake.per_minute,
      sources: intake.sources.slice(0, 3).map((x) => x.source).join("、") }) : "";
    banner.hidden = !storms.length && !rate;
    banner.textContent = [rate, storms.length ? t("alerts.storm", { list: storms.slice(0, 5).map((r) =>
      `${Object.values(r.target || {}).filter(Boolean).join(" ")} ×${1 + r.repeats}`).join("、") }) : ""]
      .filter(Boolean).join(" ");
  };
  bar.addEventListener("change", (e) => { filters[e.target.name] = e.target.value; draw(); });
  const load = async () => {
    try {
      [rows, intake] = await Promise.all([get("/alert-tasks", { limit: 500 }),
        get("/alert-intake").catch(() => null)]);
      if (!ctx.alive()) return;
      status.textContent = `${t("alerts.refreshed")} ${formatTime(new Date().toISOString(), true)}`;
      draw();
    } catch (err) {
      status.textContent = err.message || String(err);
    }
  };
  await load();
  const timer = setInterval(load, REFRESH_MS);
  const loop = await yieldPanel();
  const el = h("div", { class: "alerts" },
    h("div", { class: "page-head" }, h("h1", {}, t("alerts.title"))),
    banner, bar,
    h("div", { class: "alerts-grid" },
      h("div", { class: "col" }, panel(t("alerts.wall"), wall)),
      h("div", { class: "col" }, panel(t("alerts.map"), map))),
    loop);
  return { el, cleanup: () => clearInterval(timer) };
}

/** The loop's yield (alerts → tasks → cases opened) and its times per domain, over the
 * tasks the caller may see (GET /alert-statistics?group_by=domain). */
async function yieldPanel() {
  let data;
  try {
    data = await get("/alert-statistics", { group_by: "domain" });
  } catch (err) {
    return null;
  }
  const num = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(1));
  const cols = ["alerts.domain", "alerts.received", "alerts.tasks", "alerts.closed",
    "alerts.cases_opened", "alerts.case_rate", "alerts.median_ack", "alerts.median_arrive",
    "alerts.median_close"];
  const table = h("table", { class: "grid-table", id: "alert-yield" },
    h("thead", {}, h("tr", {}, cols.map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, data.rows.map((r) => h("tr", { dataset: { domain: r.domain } },
      h("td", {}, label("alert_domain", r.domain)),
      h("td", { class: "num" }, String(r.alerts)),
      h("td", { class: "num" }, String(r.tasks)),
      h("td", { class: "num" }, String(r.closed)),
      h("td", { class: "num" }, String(r.cases_opened)),
      h("td", { class: "num" }, r.case_rate === null ? "—" : `${Math.round(r.case_rate * 100)}%`),
      h("td", { class: "num" }, num(r.median_ack_minutes)),
      h("td", { class: "num" }, num(r.median_arrive_minutes)),
      h("td", { class: "num" }, num(r.median_close_minutes))))));
  return panel(t("alerts.yield"), h("div", { class: "table-wrap" }, table));
}

/** A task's state in the words of alert_task.yaml (not another procedure's "acknowledged"). */
function stateBadge(state, fullTitle) {
  return h("span", { class: ["badge", `state-${state}`], title: fullTitle || null, dataset: { state } },
    label("alert_state", state));
}

function overdue(r) {
  return timeLeft(r).cls === "overdue";
}

function wallTable(rows) {
  if (!rows.length) return h("p", { class: "muted empty" }, t("command.none"));
  const order = { urgent: 0, normal: 1 };
  rows = [...rows].sort((a, b) => (a.state === "closed") - (b.state === "closed")
    || order[a.urgency] - order[b.urgency] || String(b.created_at).localeCompare(String(a.created_at)));
  return h("table", { class: "grid-table", id: "alert-tasks" },
    h("thead", {}, h("tr", {}, ["board.case", "alerts.kind", "board.county", "alerts.target",
      "alerts.handler", "alerts.repeats", "board.state", "board.left"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => {
      const left = timeLeft(r), esc = (r.escalations || []).length;
      return h("tr", { class: [r.urgency === "urgent" && "urgent", left.cls === "overdue" && "overdue", esc && "escalated"],
        dataset: { taskId: r.id, state: r.state, urgency: r.urgency } },
      h("td", {}, h("a", { href: `#/alerts/${r.id}`, class: "case" }, r.case_number),
        r.urgency === "urgent" ? h("span", { class: "pill late" }, t("alerts.urgent")) : null),
      h("td", {}, label("alert_kind", r.alert_kind)),
      h("td", {}, label("county", r.county)),
      h("td", {}, Object.values(r.target || {}).filter(Boolean).join(" · ")),
      h("td", { class: "small" }, r.counterpart_unit),
      h("td", { class: "num" }, `×${1 + (r.repeats || 0)}`),
      h("td", {}, stateBadge(r.state), esc ? h("span", { class: "pill late" }, `${t("command.escalations")} ${esc}`) : null),
      h("td", { class: ["num", "left", left.cls] }, r.state === "closed" ? "—" : left.text));
    })));
}

function countyMap(rows) {
  const open = {}, late = {};
  for (const r of rows) {
    if (r.state === "closed") continue;
    open[r.county] = (open[r.county] || 0) + 1;
    if (overdue(r)) late[r.county] = (late[r.county] || 0) + 1;
  }
  const W = 92, H = 58, G = 8;
  return s("svg", { viewBox: `0 0 ${4 * (W + G)} ${4 * (H + G)}`, role: "img", class: "county-svg",
    "aria-label": t("alerts.map") },
  Object.entries(GRID).map(([county, [col, row]]) => {
    const x = col * (W + G), y = row * (H + G), n = open[county] || 0, bad = late[county] || 0;
    return s("g", { class: ["county", n && "busy", bad && "late"], dataset: { county, open: n, overdue: bad } },
      s("rect", { x, y, width: W, height: H, rx: 6 }),
      s("text", { x: x + W / 2, y: y + 22, "text-anchor": "middle", class: "county-name" }, label("county", county)),
      s("text", { x: x + W / 2, y: y + 44, "text-anchor": "middle", class: "county-count" },
        `${t("alerts.open")} ${n}` + (bad ? ` · ${t("alerts.overdue")} ${bad}` : "")));
  }));
}

async function alertDetail(id, ctx) {
  const kind = "alert_task", collection = "alert-tasks";
  const [record, tracked, proc] = await Promise.allSettled([get(`/${collection}/${id}`), get(`/handoffs/${id}`), procedure(kind)]);
  if (record.status === "rejected") throw record.reason;
  const rec = record.value, table = proc.value || null, row = tracked.value || null;
  const left = timeLeft(rec);
  const head = h("div", { class: "page-head" },
    h("a", { href: "#/alerts", class: "back" }, `← ${t("common.back")}`),
    h("h1", { id: "case-number" }, rec.case_number),
    h("span", { class: "kind" }, label("alert_kind", rec.alert_kind)),
    rec.urgency === "urgent" ? h("span", { class: "pill late" }, t("alerts.urgent")) : null,
    stateBadge(rec.state, table?.states?.[rec.state]?.title));
  const reading = Object.entries(rec.latest || {}).filter(([, v]) => v !== null && v !== "")
    .map(([k, v]) => `${t(`field.${k}`)} ${v}`).join("；");
  const summary = panel(t("handoff.summary"), pairs([
    [t("alerts.kind"), `${label("alert_kind", rec.alert_kind)} · ${label("alert_domain", rec.domain)}`],
    [t("board.county"), `${label("county", rec.county)} (${rec.owner_unit})`],
    [t("alerts.handler"), rec.counterpart_unit],
    [t("alerts.target"), Object.values(rec.target || {}).filter(Boolean).join(" · ")],
    [t("alerts.reading"), reading],
    (rec.recommendations || []).length ? [t("handoff.recommendations"), h("span", { class: "pill late", id: "recommendations" },
      rec.recommendations.map((r) => `${r.suspected_offence} · ${r.title}`).join("；"))] : null,
    [t("alerts.repeats"), `×${1 + (rec.repeats || 0)} · ${formatTime(rec.last_seen_at)}`],
    [t("alerts.source"), `${rec.source?.unit} · ${rec.source?.alert_id}`],
    [t("board.deadline"), deadlineLine(rec.deadline)],
    [t("board.left"), h("span", { class: ["left", left.cls] }, rec.state === "closed" ? "—" : left.text)],
    rec.result ? [t("alerts.result"), label("alert_result", rec.result)] : null,
    rec.case ? [t("alerts.case"), caseLink(rec.case)] : null]));
  const escalations = panel(t("command.escalations"), (rec.escalations || []).length
    ? h("table", { class: "grid-table", id: "escalations" },
      h("thead", {}, h("tr", {}, ["command.missed", "alerts.level", "command.due", "command.escalated_at", "command.escalated_to"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rec.escalations.map((e) => h("tr", { class: "overdue" },
        h("td", {}, label("deadline", e.miss)), h("td", {}, label("alert_level", e.level)),
        h("td", { class: "num" }, formatTime(e.due)), h("td", { class: "num" }, formatTime(e.at)),
        h("td", {}, e.escalated_to_unit)))))
    : h("p", { class: "muted" }, t("command.no_escalations")));
  const actions = actionsPanel({ kind, collection, id, rec, table, ctx });
  const timeline = timelinePanel(row?.timeline, rec.timeline, table);
  return h("div", { class: "alert-detail", dataset: { taskId: id, state: rec.state } }, head,
    h("div", { class: "columns" },
      h("div", { class: "col" }, summary, escalations),
      h("div", { class: "col" }, actions, timeline)));
}

function caseLink(c) {
  const text = `${label("alert_case", c.kind)} ${c.case_number || ""}`;
  if (c.kind === "criminal_referral" && c.referral_id) return h("a", { href: `#/handoff/criminal_referral/${c.referral_id}` }, text);
  if (c.kind === "market_referral" && c.referral_id) return h("a", { href: `#/handoff/market_referral/${c.referral_id}` }, text);
  return text;
}
