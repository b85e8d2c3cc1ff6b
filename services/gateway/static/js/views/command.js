// Command view: joint actions (each recipient's acknowledgement, progress, result and
// escalations) and assistance requests, from the command service via the gateway.
import { get, post, procedure, COLLECTION } from "../api.js";
import { commandForm } from "../forms.js";
import { bars } from "../charts.js";
import { unitName } from "../units.js";
import { h, clear, formatTime, percent } from "../dom.js";
import { t, label, enumLabel } from "../i18n.js";
import { stateBadge, timeLeft, deadlineLine, panel, pairs, errorNote } from "./common.js";
import { actionsPanel, timelinePanel, stepReload } from "./parts.js";

export async function commandView([kind, id], ctx) {
  if (kind && id) return commandDetail([kind, id], ctx);
  const creating = await createPanels(ctx);
  const jointBox = h("div", { id: "joint-box" });
  const assistBox = h("div", { id: "assist-box" });
  const load = async () => {       // the lists only: a dispatch being typed stays as it is
    const [actions, requests] = await Promise.allSettled([get("/joint-actions"), get("/assistance-requests")]);
    if (!ctx.alive()) return;
    clear(jointBox).append(actions.status === "fulfilled" ? jointTable(actions.value) : errorNote(actions.reason));
    clear(assistBox).append(requests.status === "fulfilled" ? assistanceTable(requests.value) : errorNote(requests.reason));
  };
  await load();
  const el = h("div", { class: "command" },
    h("div", { class: "page-head" }, h("h1", {}, t("command.title"))),
    creating,
    panel(t("command.joint"), jointBox),
    panel(t("command.assistance"), assistBox),
    ASSESSORS.has(ctx.me.role) ? await assessmentPanel() : null);
  return { el, reload: load };
}

function counts(rec) {
  const rs = Object.values(rec.recipients || {});
  return { n: rs.length, acked: rs.filter((r) => r.status !== "dispatched").length,
    reported: rs.filter((r) => r.status === "reported").length };
}

function jointTable(rows) {
  if (!rows.length) return h("p", { class: "muted empty" }, t("command.none"));
  return h("table", { class: "grid-table", id: "joint-actions" },
    h("thead", {}, h("tr", {}, ["board.case", "field.title", "field.domain", "field.priority", "board.state",
      "command.window", "command.acked", "command.reported", "command.escalations", "board.left"]
      .map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => {
      const c = counts(r), left = timeLeft(r), esc = (r.escalations || []).length;
      return h("tr", { class: [left.cls === "overdue" && "overdue", esc && "escalated"], dataset: { handoffId: r.id, state: r.state } },
        h("td", {}, h("a", { href: `#/command/joint_action/${r.id}`, class: "case" }, r.case_number)),
        h("td", {}, r.title),
        h("td", {}, label("domain", r.domain)),
        h("td", {}, h("span", { class: ["pill", r.priority === "urgent" && "late"] }, enumLabel("priority", r.priority))),
        h("td", {}, stateBadge(r.state)),
        h("td", { class: "num" }, `${formatTime(r.window_start)} – ${formatTime(r.window_end)}`),
        h("td", { class: "num" }, `${c.acked}/${c.n}`),
        h("td", { class: "num" }, `${c.reported}/${c.n}`),
        h("td", { class: ["num", esc && "overdue"] }, String(esc)),
        h("td", { class: ["num", "left", left.cls] }, left.text));
    })));
}

function assistanceTable(rows) {
  if (!rows.length) return h("p", { class: "muted empty" }, t("command.none"));
  return h("table", { class: "grid-table", id: "assistance-requests" },
    h("thead", {}, h("tr", {}, ["board.case", "field.subject", "command.from", "command.to", "board.state",
      "board.deadline", "board.left"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => {
      const left = timeLeft(r);
      return h("tr", { class: [left.cls === "overdue" && "overdue"], dataset: { handoffId: r.id, state: r.state } },
        h("td", {}, h("a", { href: `#/command/assistance_request/${r.id}`, class: "case" }, r.case_number)),
        h("td", {}, r.subject),
        h("td", {}, label("county", r.from_county)),
        h("td", {}, label("county", r.to_county)),
        h("td", {}, stateBadge(r.state)),
        h("td", {}, deadlineLine(r.deadline)),
        h("td", { class: ["num", "left", left.cls] }, left.text));
    })));
}

export async function commandDetail([kind, id], ctx) {
  const collection = COLLECTION[kind];
  const [record, tracked, proc] = await Promise.allSettled([get(`/${collection}/${id}`), get(`/handoffs/${id}`), procedure(kind)]);
  if (record.status === "rejected") throw record.reason;
  const rec = record.value, table = proc.value || null, row = tracked.value || null;
  const stateTitle = table?.states?.[rec.state]?.title;
  const left = timeLeft(rec);
  const head = h("div", { class: "page-head" },
    h("a", { href: "#/command", class: "back" }, `← ${t("common.back")}`),
    h("h1", { id: "case-number" }, rec.case_number),
    h("span", { class: "kind" }, label("kind", kind)),
    stateBadge(rec.state, stateTitle));
  const summary = kind === "joint_action"
    ? panel(t("handoff.summary"), pairs([
      [t("field.title"), rec.title],
      [t("field.domain"), label("domain", rec.domain)],
      [t("command.priority"), enumLabel("priority", rec.priority)],
      [t("command.dispatcher"), unitName(rec.owner_unit)],
      [t("command.area"), (rec.area || []).map((c) => label("county", c)).join("、")],
      [t("command.location"), rec.location],
      [t("command.window"), `${formatTime(rec.window_start)} – ${formatTime(rec.window_end)}`],
      [t("command.instructions"), rec.instructions],
      [t("board.deadline"), deadlineLine(rec.deadline)],
      [t("board.left"), h("span", { class: ["left", left.cls] }, left.text)],
      rec.closed_reason ? [t("field.reason"), rec.closed_reason] : null]))
    : panel(t("handoff.summary"), pairs([
      [t("field.subject"), rec.subject],
      [t("command.from"), `${label("county", rec.from_county)} · ${unitName(rec.owner_unit)}`],
      [t("command.to"), `${label("county", rec.to_county)} · ${unitName(rec.counterpart_unit)}`],
      [t("field.request"), rec.request],
      [t("field.domain"), label("domain", rec.domain)],
      [t("field.plate"), rec.plate],
      [t("field.related_case_number"), rec.related_case_number],
      [t("field.answer"), rec.answer],
      [t("board.deadline"), deadlineLine(rec.deadline)],
      [t("board.left"), h("span", { class: ["left", left.cls] }, left.text)]]));
  const recipients = kind === "joint_action" ? recipientsPanel(rec) : null;
  const escalations = kind === "joint_action" ? escalationsPanel(rec) : null;
  const actions = actionsPanel({ kind, collection, id, rec, table, ctx });
  const timeline = timelinePanel(row?.timeline, rec.timeline, table);
  const el = h("div", { class: "command-detail", dataset: { handoffId: id, state: rec.state } },
    head, recipients,
    h("div", { class: "columns" },
      h("div", { class: "col" }, summary, escalations),
      h("div", { class: "col" }, actions, timeline)));
  return { el, reload: stepReload(id, rec.step, ctx) };
}

function onTime(flag) {
  if (flag === null || flag === undefined) return null;
  return h("span", { class: ["pill", flag ? "ok" : "late"] }, flag ? t("handoff.on_time") : t("handoff.late"));
}

function recipientsPanel(rec) {
  const rows = Object.values(rec.recipients || {});
  return panel(t("command.recipients"), h("table", { class: "grid-table", id: "recipients" },
    h("thead", {}, h("tr", {}, ["command.unit", "command.status", "command.ack_due", "command.acked",
      "command.progress", "command.result", "command.escalations"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { recipient: r.unit, status: r.status },
      class: [Object.keys(r.escalations || {}).length && "escalated"] },
    h("td", {}, h("strong", {}, r.name || unitName(r.unit)), h("div", { class: "muted small" }, `${r.unit} · ${label("role", r.role)}`)),
    h("td", {}, h("span", { class: ["badge", `recipient-${r.status}`] }, t(`recipient.${r.status}`))),
    h("td", { class: "num" }, formatTime(r.ack_due), h("div", { class: "muted small" }, `${t("command.report_due")} ${formatTime(r.report_due)}`)),
    h("td", { class: "num" }, r.acknowledged_at ? [formatTime(r.acknowledged_at), " ", onTime(r.ack_on_time)] : "—"),
    h("td", {}, r.progress?.length ? h("ul", { class: "plain small" }, r.progress.map((p) => h("li", {},
      `${formatTime(p.at)} ${p.note}`,
      p.vehicles_checked !== null && p.vehicles_checked !== undefined ? ` · ${t("field.vehicles_checked")} ${p.vehicles_checked}` : "",
      p.cases_opened !== null && p.cases_opened !== undefined ? ` · ${t("field.cases_opened")} ${p.cases_opened}` : ""))) : "—"),
    h("td", {}, r.result ? h("div", { class: "small" },
      `${t("field.vehicles_checked")} ${r.result.vehicles_checked} · ${t("field.cases_opened")} ${r.result.cases_opened} · ${t("field.referrals_made")} ${r.result.referrals_made}`,
      r.result.summary ? h("div", {}, r.result.summary) : null,
      referralLinks(rec, r.unit),
      h("div", { class: "muted" }, formatTime(r.reported_at), " ", onTime(r.report_on_time))) : "—"),
    h("td", {}, Object.values(r.escalations || {}).map((e) => h("div", { class: "pill late" },
      `${enumLabel("miss", e.miss)} · ${formatTime(e.at)}`))))))));
}

function escalationsPanel(rec) {
  const list = rec.escalations || [];
  if (!list.length) return panel(t("command.escalations"), h("p", { class: "muted" }, t("command.no_escalations")));
  return panel(t("command.escalations"), h("table", { class: "grid-table", id: "escalations" },
    h("thead", {}, h("tr", {}, ["command.unit", "command.missed", "command.due", "command.escalated_at", "command.escalated_to"]
      .map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, list.map((e) => h("tr", { class: "overdue" },
      h("td", {}, rec.recipients?.[e.recipient]?.name || e.recipient),
      h("td", {}, enumLabel("miss", e.miss)),
      h("td", { class: "num" }, formatTime(e.due)),
      h("td", { class: "num" }, formatTime(e.at)),
      h("td", {}, unitName(e.escalated_to)))))));
}


// ------------------------------------------------------------------ dispatch, ask

const CENTRES = new Set(["city_command", "county_command"]);

/** 下达联合行动 (city centre: to chosen county centres and partner agencies; a county
 *  centre: to the agencies and its own enforcement teams serving its county) and 请求协查 (a county centre: neighbours
 *  first; another county needs the city centre's approval). */
async function createPanels(ctx) {
  const me = ctx.me;
  if (!CENTRES.has(me.role)) return null;
  const [ref, joint, assist] = await Promise.all([get("/reference/command"), procedure("joint_action"),
    procedure("assistance_request")]);
  const panels = [];
  const city = me.role === "city_command";
  const centres = Object.entries(ref.county_centres);
  // who takes orders from whom is the reference's `dispatched_by` (centres.yaml): the
  // city centre the county centres and city-wide agencies; a county centre the agencies
  // and its own enforcement teams serving its county, nothing else is offered
  const mine = (u) => (u.dispatched_by || []).includes(city ? "city_centre" : "county_centre")
    && (city || u.county === me.county);
  const recipients = [
    ...(city ? centres.map(([c, u]) => ({ value: u.id, label: u.name, group: t("command.county_centres"), county: c })) : []),
    ...ref.agencies.filter(mine).map((u) => ({ value: u.id, label: u.name, group: label("agency", u.agency) }))];
  const now = Date.now();
  panels.push(createBox("dispatch", "joint_action", commandForm({
    schema: joint.payloads.dispatch, command: "dispatch",
    prefill: { area: city ? [] : [me.county], priority: "normal",
      window_start: new Date(now + 3600e3).toISOString(), window_end: new Date(now + 9 * 3600e3).toISOString() },
    hints: { choices: { recipients } },
    onSubmit: async (payload) => {
      const rec = await post("/joint-actions", payload, { command: "dispatch" });
      ctx.flash(t("new.created", { n: rec.case_number }));
      ctx.go(`#/command/joint_action/${rec.id}`);
    },
  }), !city));
  if (!city && ref.county_centres[me.county]) {
    const neighbours = ref.county_centres[me.county].neighbours || [];
    const others = centres.map(([c]) => c).filter((c) => c !== me.county && !neighbours.includes(c));
    const toCounty = [...neighbours.map((c) => ({ value: c, label: label("county", c), group: t("command.neighbours") })),
      ...others.map((c) => ({ value: c, label: label("county", c), group: t("command.needs_approval") }))];
    panels.push(createBox("request_assistance", "assistance_request", commandForm({
      schema: assist.payloads.request_assistance, command: "request_assistance",
      hints: { choices: { to_county: toCounty } },
      onSubmit: async (payload) => {
        const rec = await post("/assistance-requests", payload, { command: "request_assistance" });
        ctx.flash(t("new.created", { n: rec.case_number }));
        ctx.go(`#/command/assistance_request/${rec.id}`);
      },
    })));
  }
  return h("div", { class: "create-panels" }, panels);
}

function createBox(command, kind, form, open = false) {
  return h("details", { class: "panel create", open, dataset: { create: command, kind } },
    h("summary", {}, h("strong", {}, label("command", command))), form);
}

// ------------------------------------------------------------------ assessment

const ASSESSORS = new Set(["city_command", "coordinator", "operator"]);

/** 监督考核: the centres ranked over the past 90 days, as a table and a chart. */
async function assessmentPanel() {
  const end = new Date();
  const start = new Date(end.getTime() - 90 * 86400e3);
  let data;
  try {
    data = await get("/assessment", { start: start.toISOString(), end: end.toISOString() });
  } catch (err) {
    return panel(t("command.assessment"), errorNote(err));
  }
  const rows = data.units.filter((u) => u.actions || u.alert_tasks);
  if (!rows.length) return panel(t("command.assessment"), h("p", { class: "muted" }, t("command.none")));
  const num = (v, digits = 1) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
  const table = h("table", { class: "grid-table", id: "assessment" },
    h("thead", {}, h("tr", {}, ["command.rank", "command.unit", "command.actions", "command.median_ack",
      "command.on_time_rate", "command.cases_per_action", "command.alert_tasks",
      "command.alert_arrive", "command.alert_close"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((u) => h("tr", { dataset: { unit: u.unit } },
      h("td", { class: "num" }, String(u.rank)),
      h("td", {}, u.name || unitName(u.unit)),
      h("td", { class: "num" }, String(u.actions)),
      h("td", { class: "num" }, num(u.median_ack_minutes)),
      h("td", { class: "num" }, u.on_time_report_rate === null ? "—" : percent(u.on_time_report_rate)),
      h("td", { class: "num" }, num(u.cases_per_action, 2)),
      h("td", { class: "num" }, String(u.alert_tasks || 0)),
      h("td", { class: "num", title: domainTimes(u) }, num(u.median_alert_arrive_minutes)),
      h("td", { class: "num" }, num(u.median_alert_close_minutes))))));
  const chart = bars({
    ariaLabel: t("command.on_time_rate"), max: 1,
    data: rows.filter((u) => u.on_time_report_rate !== null).map((u) => ({
      label: (u.name || unitName(u.unit)).replace("交通运输指挥中心", "").replace("市场监督管理局", "市监"),
      value: u.on_time_report_rate, text: percent(u.on_time_report_rate), cls: "bar-rate" })),
  });
  return panel(`${t("command.assessment")} · ${t("command.last_90_days")}`, h("div", { class: "table-wrap" }, table), chart);
}

/** An assessed centre's alert tasks per domain: "road 12.0 / 95.0 min, ..." (on site /
 * closed), the table cell's tooltip. */
function domainTimes(u) {
  const num = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(1));
  return (u.alert_by_domain || []).map((d) => `${label("alert_domain", d.domain)}: ${d.alert_tasks} · `
    + `${num(d.median_alert_arrive_minutes)} / ${num(d.median_alert_close_minutes)}`).join("; ");
}

/** The cases a recipient's result names, each a link to it on the board. */
function referralLinks(rec, unit) {
  const found = (rec.referrals || []).filter((x) => x.recipient === unit);
  if (!found.length) return null;
  return h("ul", { class: "plain referral-links" }, found.map((x) => h("li", {},
    h("a", { href: `#/board?q=${encodeURIComponent(x.case_number)}&all=true`, dataset: { referral: x.case_number } }, x.case_number),
    ` · ${label("agency", x.route)} · ${x.summary}`)));
}
