// One handoff: its record (from the service that keeps it), its timeline (from the
// tracker), the transfer-documents checklist, and a form per next action the service
// allows the signed-in role (POST /api/v1/<collection>/<id>/<command>).
import { get, procedure, COLLECTION } from "../api.js";
import { unitName } from "../units.js";
import { h, formatTime } from "../dom.js";
import { t, label, lang, article } from "../i18n.js";
import { stateBadge, timeLeft, deadlineLine, panel, pairs } from "./common.js";
import { actionsPanel, timelinePanel, stepReload } from "./parts.js";
import { commandDetail } from "./command.js";
import { caseFilePanel } from "./casefile.js";

export async function handoffView([kind, id], ctx) {
  if (kind === "joint_action" || kind === "assistance_request") return commandDetail([kind, id], ctx);
  if (kind === "alert_task") { ctx.go(`#/alerts/${id}`); return h("span"); }
  const collection = COLLECTION[kind];
  const [tracked, record, proc] = await Promise.allSettled([
    get(`/handoffs/${id}`), collection ? get(`/${collection}/${id}`) : Promise.reject(new Error(kind)),
    procedure(kind)]);
  if (tracked.status === "rejected" && record.status === "rejected") throw record.reason;
  const row = tracked.value || null, rec = record.value || null, table = proc.value || null;
  const main = rec || row;
  const state = main.state;
  const stateTitle = table?.states?.[state]?.title;

  const head = h("div", { class: "page-head" },
    h("a", { href: "#/board", class: "back" }, `← ${t("common.back")}`),
    h("h1", { id: "case-number" }, main.case_number),
    h("span", { class: "kind" }, label("kind", kind)),
    stateBadge(state, stateTitle));

  const notes = [];
  if (!row) notes.push(h("p", { class: "note", id: "tracker-missing" }, t("handoff.tracker_missing")));
  if (!rec) notes.push(h("p", { class: "note" }, t("handoff.not_visible")));

  const left = timeLeft(row || rec);
  const summary = panel(t("handoff.summary"), pairs([
    [t("board.kind"), label("kind", kind)],
    [t("board.state"), h("span", {}, stateBadge(state), stateTitle && lang() === "zh" && stateTitle !== label("state", state) ? h("span", { class: "muted" }, ` ${stateTitle}`) : null)],
    [t("board.county"), label("county", main.county)],
    [t("board.owner"), unitName(main.owner_unit)],
    [t("board.counterpart"), unitName(main.counterpart_unit)],
    rec?.police_units?.length ? [t("field.police_unit"), rec.police_units.map(unitName).join("，")] : null,
    rec?.procuratorate_unit ? [t("field.procuratorate_unit"), unitName(rec.procuratorate_unit)] : null,
    rec?.target_unit ? [t("field.target_unit"), unitName(rec.target_unit)] : null,
    rec?.plate ? [t("field.plate"), rec.plate] : null,
    rec?.summary ? [t("field.summary"), rec.summary] : null,
    [t("board.deadline"), deadlineLine(main.deadline)],
    [t("board.left"), h("span", { class: ["left", left.cls], id: "time-left" }, left.text)],
    [t("handoff.step"), String(main.step)],
    rec?.created_at ? [t("handoff.created"), formatTime(rec.created_at)] : null,
  ]));

  const parties = rec?.parties?.length ? panel(t("handoff.parties"), h("ul", { class: "plain" },
    rec.parties.map((p) => h("li", {}, p.name, h("span", { class: "muted" }, ` · ${label("enum", p.role)}`))))) : null;
  const recommendations = rec?.recommendations?.length ? panel(t("handoff.recommendations"),
    h("ul", { class: "plain" }, rec.recommendations.map((r) => h("li", {},
      h("strong", {}, lang() === "en" ? r.title_en || r.title : r.title),
      r.suspected_offence ? ` → ${lang() === "en" ? r.suspected_offence_en || r.suspected_offence : r.suspected_offence}` : null,
      r.legal_basis ? h("div", { class: "muted small" }, r.legal_basis) : null)))) : null;

  const documents = kind === "criminal_referral" && rec && table?.documents?.length
    ? documentsChecklist(table.documents, rec.documents || {}) : null;

  const caseFile = caseFilePanel({ collection, id, rec, table, ctx });
  const actions = rec ? actionsPanel({ kind, collection, id, rec, table, ctx }) : null;
  const timeline = timelinePanel(row?.timeline, rec?.timeline, table);

  const el = h("div", { class: "handoff", dataset: { handoffId: id, state } },
    head, notes,
    h("div", { class: "columns" },
      h("div", { class: "col" }, summary, caseFile, documents, parties, recommendations),
      h("div", { class: "col" }, actions, timeline)));
  return { el, reload: stepReload(id, main.step, ctx) };
}

function documentsChecklist(required, attached) {
  const have = Array.isArray(attached) ? Object.fromEntries(attached.map((d) => [d.kind, d])) : attached;
  return panel(t("handoff.documents"), h("ul", { class: "checklist", id: "documents" },
    required.map((d) => {
      const doc = have[d.id];
      return h("li", { class: doc ? "done" : "todo", dataset: { document: d.id } },
        h("span", { class: "tick", "aria-hidden": "true" }, doc ? "✓" : "○"),
        h("span", {}, lang() === "en" ? d.title_en || d.title : d.title,
          h("span", { class: "muted small" }, ` (${article(d.article)})`)),
        h("span", { class: ["status", doc ? "ok" : "missing"] },
          doc ? `${t("handoff.attached")}${doc.reference ? ` · ${doc.reference}` : ""}` : t("handoff.missing")));
    })));
}

