// Pieces shared by the views.
import { h, formatTime, formatDuration } from "../dom.js";
import { unitName } from "../units.js";
import { t, label, enumLabel, deadlineTitle, article } from "../i18n.js";

export const KINDS = ["criminal_referral", "market_referral", "joint_action", "assistance_request",
  "supervision_inquiry", "alert_task"];
export const COUNTIES = ["lucheng", "longwan", "ouhai", "dongtou", "ruian", "yueqing", "longgang",
  "yongjia", "pingyang", "cangnan", "wencheng", "taishun"];
export const AGENCIES = ["police", "market_regulation", "command", "procuratorate"];
export const DOMAINS = ["key_vehicles", "overloading", "illegal_operation", "ride_hailing", "driving_training"];
export const STATES = {
  criminal_referral: ["draft", "approval_requested", "approved", "refused", "transferred", "receipted",
    "forwarded", "filed", "not_filed", "reconsideration_requested", "reconsideration_upheld",
    "supervision_requested", "filing_ordered", "supervision_concluded", "evidence_handed_over",
    "returned_for_penalty", "penalty_proceedings", "closed"],
  market_referral: ["sent", "received", "returned", "accepted", "investigating", "result_reported", "closed"],
  joint_action: ["dispatched", "under_way", "closed"],
  assistance_request: ["approval_pending", "requested", "acknowledged", "answered", "refused", "withdrawn"],
  alert_task: ["dispatched", "acknowledged", "on_site", "disposed", "closed"],
  supervision_inquiry: ["awaiting_answer", "transfer_pending", "explained", "transfer_required", "transferred",
    "reasons_accepted", "accountability_referred"],
};

export function stateBadge(state, fullTitle) {
  return h("span", { class: ["badge", `state-${state}`], title: fullTitle || null, dataset: { state } },
    label("state", state));
}

/** {text, cls} of the time left to a row's next deadline (tracker row or record). */
export function timeLeft(row) {
  const d = row.deadline;
  if (!d?.due) return { text: t("board.no_deadline"), cls: "" };
  const left = row.time_left_seconds ?? Math.round((Date.parse(d.due) - Date.now()) / 1000);
  const binding = (d.obligation || "must") === "must";
  if (left < 0) {
    return { text: t("board.overdue_by", { d: formatDuration(-left) }), cls: binding ? "overdue" : "lapsed" };
  }
  return { text: formatDuration(left), cls: left < 86400 && binding ? "soon" : "" };
}

export function deadlineLine(deadline) {
  if (!deadline) return h("span", { class: "muted" }, "—");
  return h("span", {}, deadlineTitle(deadline), " · ", formatTime(deadline.due),
    deadline.article ? h("span", { class: "muted" }, ` (${article(deadline.article)})`) : null);
}

export function panel(title, ...children) {
  return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...children);
}

export function pairs(list) {
  return h("dl", { class: "pairs" }, list.filter(Boolean).map(([k, v]) =>
    [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]));
}

export function errorNote(err) {
  return h("div", { class: "form-error", role: "alert" }, err.message || String(err),
    err.status ? h("span", { class: "muted" }, ` (HTTP ${err.status} ${err.code})`) : null);
}

export function select(name, options, value, allLabel) {
  return h("select", { name, id: `filter-${name}` },
    h("option", { value: "" }, allLabel ?? t("common.all")),
    options.map((o) => (o.group
      ? h("optgroup", { label: o.group }, o.options.map((x) =>
        h("option", { value: x.value, selected: x.value === value }, x.label)))
      : h("option", { value: o.value, selected: o.value === value }, o.label))));
}

// fields whose values are codes with a label (counties, domains, outcomes, ...)
const CODED = new Set(["county", "to_county", "from_county", "area", "domain", "priority", "decision",
  "outcome", "extension", "miss", "reason_code", "direction", "id_type", "role"]);
const UNIT_FIELDS = new Set(["recipient", "recipients", "dispatcher", "escalated_to", "competent_authority", "unreported"]);
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

function show(field, v) {
  if (typeof v === "string" && (field.endsWith("_unit") || UNIT_FIELDS.has(field))) return unitName(v);
  if (typeof v === "boolean") return v ? t("common.yes") : t("common.no");
  if (typeof v === "string" && ISO_TIME.test(v)) return formatTime(v);
  if (typeof v === "string" && CODED.has(field)) return enumLabel(field, v);
  return String(v);
}

/** Render details of a step as "field: value" pairs (nested values summarized). */
export function detailsList(details) {
  const entries = Object.entries(details || {}).filter(([, v]) =>
    v !== null && v !== undefined && !(Array.isArray(v) && !v.length) && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length));
  if (!entries.length) return null;
  return h("dl", { class: "details" }, entries.map(([k, v]) => [
    h("dt", {}, t(`field.${k}`)),
    h("dd", {}, typeof v === "object" && v !== null ? summarize(k, v) : show(k, v)),
  ]));
}

function summarize(field, value) {
  if (Array.isArray(value)) {
    return value.map((x) => (x && typeof x === "object"
      ? [x.title, x.name, x.reference, x.badge_number, x.unit && unitName(x.unit), x.case_number].filter(Boolean).join(" ") || JSON.stringify(x)
      : show(field, x))).join("；");
  }
  return Object.entries(value).map(([k, v]) => `${t(`field.${k}`)} ${typeof v === "object" ? JSON.stringify(v) : show(k, v)}`).join("；");
}
