// 以罚代刑监督: for the procuratorate (and coordinators) the penalty decisions that meet a
// criminal threshold with no criminal referral (candidates), the imports, and a form to
// open an inquiry; for an agency head the inquiries addressed to it. Everything shown is
// what the API returns to the signed-in user.
import { get, post, upload } from "../api.js";
import { h, formatTime } from "../dom.js";
import { t, label, lang } from "../i18n.js";
import { stateBadge, timeLeft, panel, pairs, errorNote } from "./common.js";

const READERS = new Set(["procuratorate", "coordinator", "operator"]);

export async function supervisionView([page, id], ctx) {
  if (page === "import") return importPage(ctx);
  if (page === "decision" && id) return decisionPage(decodeURIComponent(id), ctx);
  const reader = READERS.has(ctx.me.role);
  const [rows, stats, inquiries] = await Promise.allSettled([
    reader ? get("/penalty-decisions", { show: "candidates" }) : Promise.resolve(null),
    reader ? get("/statistics/supervision") : Promise.resolve(null),
    get("/supervision-inquiries")]);
  return h("div", { class: "supervision" },
    h("div", { class: "page-head" }, h("h1", {}, t("sup.title")),
      reader ? h("a", { href: "#/supervision/import", class: "button", id: "go-import" }, t("sup.import")) : null),
    reader ? statsPanel(stats) : null,
    reader ? panel(t("sup.candidates"), rows.status === "fulfilled" ? candidateTable(rows.value) : errorNote(rows.reason)) : null,
    panel(t("sup.inquiries"), inquiries.status === "fulfilled" ? inquiryTable(inquiries.value) : errorNote(inquiries.reason)));
}

function statsPanel(result) {
  if (result.status !== "fulfilled") return panel(t("sup.stats"), errorNote(result.reason));
  const s = result.value;
  const figures = [["sup.decisions", s.decisions], ["sup.matches", s.matches], ["sup.referred", s.referred],
    ["sup.candidate_count", s.candidates], ["sup.inquiry_count", s.inquiries], ["sup.followed", s.transfers_followed]];
  return h("section", { class: "panel figures", id: "supervision-stats" }, figures.map(([k, v]) =>
    h("div", { class: "figure", dataset: { figure: k.split(".")[1] } }, h("strong", {}, String(v)), h("span", {}, t(k)))));
}

function rules(d) {
  return (d.matches || []).map((m) => (lang() === "en" ? m.title_en || m.title : m.title)).join("；");
}

function candidateTable(rows) {
  if (!rows.length) return h("p", { class: "muted empty" }, t("sup.no_candidates"));
  return h("div", { class: "table-wrap" }, h("table", { class: "grid-table", id: "candidates" },
    h("thead", {}, h("tr", {}, ["board.case", "sup.decided_on", "board.county", "sup.unit", "field.plate",
      "sup.rules", "sup.inquiry"].map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((d) => h("tr", { dataset: { caseNumber: d.case_number } },
      h("td", {}, h("a", { href: `#/supervision/decision/${encodeURIComponent(d.case_number)}`, class: "case" }, d.case_number)),
      h("td", { class: "num" }, d.decided_on),
      h("td", {}, label("county", d.county)),
      h("td", {}, d.unit),
      h("td", {}, d.plate || "—"),
      h("td", {}, rules(d)),
      h("td", {}, d.inquiries.length ? stateBadge(d.inquiries.at(-1).state) : "—"))))),
  h("p", { class: "muted" }, t("common.count", { n: rows.length })));
}

function inquiryTable(rows) {
  if (!rows.length) return h("p", { class: "muted empty" }, t("command.none"));
  return h("div", { class: "table-wrap" }, h("table", { class: "grid-table", id: "inquiries" },
    h("thead", {}, h("tr", {}, ["board.case", "board.owner", "board.counterpart", "board.state", "board.left"]
      .map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => {
      const left = timeLeft(r);
      return h("tr", { class: [left.cls === "overdue" && "overdue"], dataset: { handoffId: r.id, state: r.state } },
        h("td", {}, h("a", { href: `#/handoff/supervision_inquiry/${r.id}`, class: "case" }, r.case_number)),
        h("td", {}, r.owner_unit), h("td", {}, r.counterpart_unit),
        h("td", {}, stateBadge(r.state)),
        h("td", { class: ["num", "left", left.cls] }, left.text));
    }))));
}

async function decisionPage(caseNumber, ctx) {
  const d = await get(`/penalty-decisions/${encodeURIComponent(caseNumber)}`);
  const open = d.inquiries.find((i) => !["transferred", "reasons_accepted", "accountability_referred"].includes(i.state));
  const facts = Object.entries(d.facts || {}).map(([k, v]) => `${k} = ${v}`).join("，");
  const summary = panel(t("handoff.summary"), pairs([
    [t("board.county"), label("county", d.county)],
    [t("sup.unit"), d.unit],
    [t("sup.decided_on"), d.decided_on],
    [t("handoff.parties"), d.parties.map((p) => p.name).join("，")],
    [t("field.plate"), d.plate],
    [t("sup.penalty"), `${d.penalty}${d.fine_yuan ? ` · ${d.fine_yuan} 元` : ""}`],
    [t("sup.facts"), facts],
    [t("field.summary"), d.summary],
  ]));
  const matches = panel(t("sup.rules"), d.matches.length ? h("ul", { class: "plain", id: "matches" }, d.matches.map((m) =>
    h("li", { dataset: { rule: m.rule_id } }, h("strong", {}, lang() === "en" ? m.title_en || m.title : m.title),
      ` → ${m.suspected_offence}`,
      h("div", { class: "small" }, m.threshold_crossed.join("；")),
      h("div", { class: "muted small" }, m.legal_basis)))) : h("p", { class: "muted" }, t("sup.no_match")));
  const referred = d.referred_by.length ? panel(t("sup.referred_by"), h("ul", { class: "plain" }, d.referred_by.map((r) =>
    h("li", {}, h("a", { href: `#/handoff/criminal_referral/${r.referral_id}` }, r.case_number),
      ` · ${label("state", r.state)} · ${t(`sup.by_${r.matched_by}`)}`)))) : null;
  const inquiries = d.inquiries.length ? panel(t("sup.inquiries"), h("ul", { class: "plain" }, d.inquiries.map((i) =>
    h("li", {}, h("a", { href: `#/handoff/supervision_inquiry/${i.id}` }, i.target_unit), " ", stateBadge(i.state))))) : null;
  const canOpen = ctx.me.role === "procuratorate" && d.candidate && !open;
  return h("div", { class: "decision", dataset: { caseNumber: d.case_number, candidate: String(d.candidate) } },
    h("div", { class: "page-head" },
      h("a", { href: "#/supervision", class: "back" }, `← ${t("common.back")}`),
      h("h1", { id: "case-number" }, d.case_number),
      h("span", { class: ["badge", d.candidate ? "state-candidate" : "state-closed"] }, t(d.candidate ? "sup.candidate" : "sup.not_candidate"))),
    h("div", { class: "columns" },
      h("div", { class: "col" }, summary, matches),
      h("div", { class: "col" }, canOpen ? openForm(d, ctx) : null, inquiries, referred)));
}

function openForm(d, ctx) {
  const question = h("textarea", { name: "question", id: "question", rows: 4, required: true },
    t("sup.question_default"));
  const target = h("input", { name: "target_unit", id: "target-unit", value: d.unit });
  const error = h("div", { class: "form-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary", dataset: { submit: "open_inquiry" } }, t("sup.open"));
  const form = h("form", { class: "action-form", id: "open-inquiry", novalidate: true },
    h("label", {}, t("sup.question"), question), h("label", {}, t("field.target_unit"), target), error,
    h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.hidden = true;
    try {
      const rec = await post("/supervision-inquiries", { decision_id: d.case_number,
        question: question.value, target_unit: target.value || null });
      ctx.flash(t("sup.opened"));
      ctx.go(`#/handoff/supervision_inquiry/${rec.id}`);
    } catch (err) {
      error.textContent = `${err.message}${err.status ? ` (${err.status} ${err.code})` : ""}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return panel(t("sup.open"), form);
}

function importPage(ctx) {
  const input = h("input", { type: "file", id: "import-file", name: "file", accept: ".csv,.xlsx", required: true });
  const bar = h("progress", { id: "import-progress", max: 100, value: 0, hidden: true });
  const phase = h("span", { class: "muted", id: "import-phase" });
  const report = h("div", { id: "import-report" });
  const button = h("button", { type: "submit", class: "primary", id: "import-submit" }, t("sup.upload"));
  const form = h("form", { class: "action-form", id: "import-form" },
    h("p", { class: "muted" }, t("sup.import_hint")),
    h("label", {}, t("sup.file"), input), h("div", {}, bar, " ", phase),
    h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    report.replaceChildren();
    phase.textContent = t("sup.uploading");
    try {
      const result = await upload("/penalty-decisions", file, (fraction) => {
        bar.value = Math.round(fraction * 100);
        if (fraction >= 1) phase.textContent = t("sup.processing");
      });
      bar.value = 100;
      phase.textContent = t("sup.done");
      report.replaceChildren(importReport(result));
      ctx.flash(t("sup.imported", { n: result.inserted + result.updated }));
    } catch (err) {
      phase.textContent = "";
      report.replaceChildren(errorNote(err), err.errors ? h("pre", { class: "small" }, JSON.stringify(err.errors, null, 1)) : null);
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "supervision-import" },
    h("div", { class: "page-head" }, h("a", { href: "#/supervision", class: "back" }, `← ${t("common.back")}`),
      h("h1", {}, t("sup.import"))),
    panel(null, form, report), importsPanel());
}

function importReport(r) {
  return h("section", { class: "panel", dataset: { importId: r.id } },
    pairs([[t("sup.rows"), String(r.rows)], [t("sup.inserted"), String(r.inserted)],
      [t("sup.updated"), String(r.updated)], [t("sup.unchanged"), String(r.unchanged)],
      [t("sup.rejected"), h("span", { id: "rejected-count" }, String(r.rejected))],
      [t("sup.matches"), h("span", { id: "suspect-count" }, String(r.suspects))]]),
    r.errors.length ? h("div", { class: "table-wrap" }, h("table", { class: "grid-table", id: "import-errors" },
      h("thead", {}, h("tr", {}, ["sup.line", "sup.field", "sup.reason"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, r.errors.map((e) => h("tr", {}, h("td", { class: "num" }, String(e.line)),
        h("td", {}, e.field), h("td", {}, e.reason)))))) : null,
    r.errors_total > r.errors.length ? h("p", { class: "muted" }, t("sup.more_errors", { n: r.errors_total - r.errors.length })) : null);
}

function importsPanel() {
  const box = panel(t("sup.recent"), h("p", { class: "muted" }, t("common.loading")));
  get("/penalty-imports", { limit: 10 }).then((rows) => {
    box.lastChild.replaceWith(rows.length ? h("ul", { class: "plain", id: "imports" }, rows.map((r) =>
      h("li", {}, `${formatTime(r.at)} · ${r.filename || r.source} · ${r.rows} / ${r.inserted} / ${r.rejected}`))) : h("p", { class: "muted" }, "—"));
  }, (err) => box.lastChild.replaceWith(errorNote(err)));
  return box;
}
