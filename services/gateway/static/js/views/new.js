// Open a case: the creation commands of each procedure the signed-in role may use
// (from the procedure tables), each as a form built from its payload schema.
import { post, procedure, unitHints, COLLECTION } from "../api.js";
import { h } from "../dom.js";
import { t, label, lang, article } from "../i18n.js";
import { commandForm } from "../forms.js";
import { panel, errorNote } from "./common.js";
import { factsControl, loadJudgmentForm } from "../facts.js";

const CREATABLE = ["criminal_referral", "market_referral"];   // kinds with a create route

export async function newView([only], ctx) {
  const kinds = only ? CREATABLE.filter((k) => k === only) : CREATABLE;
  const tables = await Promise.allSettled(kinds.map((k) => procedure(k)));
  const judgment = await loadJudgmentForm().catch(() => null);   // else: JSON, as the API takes it
  const sections = [];
  kinds.forEach((kind, i) => {
    if (tables[i].status === "rejected") {
      sections.push(panel(label("kind", kind), errorNote(tables[i].reason)));
      return;
    }
    const table = tables[i].value;
    const creations = table.table.filter((row) => !row.from.length && row.roles.includes(ctx.me.role));
    for (const row of creations) {
      const form = commandForm({
        schema: table.payloads[row.command], command: row.command,
        description: [lang() === "zh" ? null : row.title, article(row.article)].filter(Boolean).join(" · "),
        prefill: { county: ctx.me.county || undefined },
        hints: { ...unitHints(table.units, row.command),
                 ...(judgment ? { controls: { facts: factsControl(judgment) } } : {}) },
        onSubmit: async (payload) => {
          const rec = await post(`/${COLLECTION[kind]}`, payload, { command: row.command });
          ctx.flash(t("new.created", { n: rec.case_number }));
          ctx.go(`#/handoff/${kind}/${rec.id}`);
        },
      });
      sections.push(h("details", { class: "panel create", open: !sections.length, dataset: { create: row.command, kind } },
        h("summary", {}, h("strong", {}, `${label("kind", kind)} · ${label("command", row.command)}`),
          lang() === "zh" ? h("span", { class: "muted" }, ` ${row.title}`) : null),
        form));
    }
  });
  if (!sections.length) sections.push(panel(null, h("p", { class: "muted" }, t("new.none"))));
  const el = h("div", { class: "new" }, h("div", { class: "page-head" }, h("h1", {}, t("nav.new"))), sections);
  return { el, reload: () => null };     // nothing here changes with other users' steps
}
