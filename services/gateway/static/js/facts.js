// The case-facts form, built from the judgment standard (GET /api/v1/judgment/form,
// contracts/standards/judgment.yaml): choose the kind of offence, then type its measurable
// facts in typed fields; the recommendation (rule, suspected offence, legal basis, how the
// threshold was crossed) appears beside the form as the officer types (POST /evaluate).
// Raw JSON facts stay available to the API only.
import { get, post } from "./api.js";
import { h, clear, debounce } from "./dom.js";
import { t, lang } from "./i18n.js";

let formDef = null;
export async function loadJudgmentForm() {
  if (!formDef) formDef = get("/judgment/form").catch((err) => { formDef = null; throw err; });
  return formDef;
}

const en = () => lang() === "en";

/** "车辆类别：passenger_bus 班线客车，tour_bus 旅游客车" -> the field's title and value labels. */
function describe(name, spec) {
  const text = (en() ? spec.description_en : spec.description) || name;
  const title = en() ? text.split(/[:.(]/)[0].trim() : text.split(/[：:（(，,]/)[0].trim();
  const labels = {};
  // "…：旅客运输（…）、校车业务、货物运输" lists the values' names in their order
  const listed = (spec.description || "").split(/[：:]/).slice(1).join("：")
    .replace(/（[^）]*）|\([^)]*\)/g, "").split("、").map((x) => x.trim()).filter(Boolean);
  const inOrder = !en() && listed.length === (spec.values || []).length && !/[a-z]_/.test(listed.join(""));
  for (const [i, v] of (spec.values || []).entries()) {
    if (inOrder) { labels[v] = listed[i]; continue; }
    const m = (spec.description || "").match(new RegExp(`(?:^|[：:，,；;\\s])${v}\\s+([^，,；;。]+)`));
    labels[v] = m && !en() ? m[1].trim() : v.replaceAll("_", " ");
  }
  return { title: title.length > 24 ? name : title, labels, help: text };
}

function input(name, spec, value) {
  const { labels } = describe(name, spec);
  if (spec.type === "enum") {
    return h("select", { name, dataset: { fact: name } }, h("option", { value: "" }, "—"),
      spec.values.map((v) => h("option", { value: v, selected: v === value }, labels[v])));
  }
  if (spec.type === "boolean") {
    return h("select", { name, dataset: { fact: name } }, h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: value === true }, t("common.yes")),
      h("option", { value: "false", selected: value === false }, t("common.no")));
  }
  if (spec.type === "integer" || spec.type === "number") {
    return h("input", { type: "number", name, dataset: { fact: name }, min: spec.minimum ?? undefined,
      step: spec.type === "integer" ? 1 : "any", value: value ?? "" });
  }
  return h("input", { type: "text", name, dataset: { fact: name }, value: value ?? "" });
}

function read(el, spec) {
  const raw = el.value.trim();
  if (raw === "") return undefined;
  if (spec.type === "boolean") return raw === "true";
  if (spec.type === "integer" || spec.type === "number") {
    const n = Number(raw);
    return Number.isNaN(n) ? raw : n;
  }
  return raw;
}

/** A control for forms.js (hints.controls.facts): rule picker, typed facts, live advice. */
export function factsControl(def) {
  return ({ name, required, value, field }) => {
    const given = value && typeof value === "object" ? value : {};
    const rules = def.rules;
    const guess = rules.find((r) => Object.keys(given).some((f) => r.facts.includes(f)));
    const rule = h("select", { id: "facts-rule", name: "facts-rule" },
      h("option", { value: "" }, t("facts.choose")),
      rules.map((r) => h("option", { value: r.id, selected: r === guess }, en() ? r.title_en : r.title)));
    const fields = h("div", { class: "grid facts-fields", id: "facts-fields" });
    const advice = h("div", { class: "facts-advice", id: "facts-advice", "aria-live": "polite" });
    const inputs = new Map();
    const values = () => {
      const out = {};
      for (const [fact, { el, spec }] of inputs) {
        const v = read(el, spec);
        if (v !== undefined) out[fact] = v;
      }
      return out;
    };
    const evaluate = debounce(async () => {
      const facts = values();
      if (!Object.keys(facts).length) { clear(advice).append(h("p", { class: "muted" }, t("facts.none"))); return; }
      try {
        show(advice, await post("/evaluate", facts));
      } catch (err) {
        clear(advice).append(h("p", { class: "form-error" }, err.message));
      }
    }, 250);
    const build = () => {
      const chosen = rules.find((r) => r.id === rule.value);
      const keep = values();
      inputs.clear();
      clear(fields);
      for (const fact of chosen ? chosen.facts : []) {
        const spec = def.facts[fact];
        if (!spec) continue;
        const el = input(fact, spec, keep[fact] ?? given[fact]);
        el.id = `fact-${fact}`;
        el.addEventListener("input", evaluate);
        el.addEventListener("change", evaluate);
        inputs.set(fact, { el, spec });
        const d = describe(fact, spec);
        fields.append(h("div", { class: "field", dataset: { field: fact } },
          h("label", { for: el.id, title: d.help }, d.title, spec.unit ? h("span", { class: "hint" }, ` (${spec.unit})`) : null,
            spec.derived ? h("span", { class: "hint" }, ` ${t("facts.derived")}`) : null),
          el));
      }
      evaluate();
    };
    rule.addEventListener("change", build);
    const box = h("div", { class: "facts-box", dataset: { wide: "1" } },
      h("div", { class: "facts-form" }, h("label", { for: "facts-rule", class: "small muted" }, t("facts.kind")), rule, fields),
      advice);
    build();
    return field(name, required, box, () => {
      const facts = values();
      return Object.keys(facts).length ? facts : undefined;
    });
  };
}

function show(el, recommendations) {
  clear(el);
  if (!recommendations.length) {
    el.append(h("p", { class: "muted", id: "no-recommendation" }, t("facts.no_match")));
    return;
  }
  for (const r of recommendations) {
    el.append(h("div", { class: ["recommendation", r.route], dataset: { rule: r.rule_id } },
      h("div", { class: "rec-title" }, h("strong", {}, en() ? r.suspected_offence_en : r.suspected_offence),
        h("span", { class: "pill" }, r.route === "police" ? t("facts.to_police") : t("facts.administrative"))),
      h("div", { class: "small" }, en() ? r.title_en : r.title),
      h("div", { class: "small muted" }, `${t("facts.basis")}：${r.legal_basis}`),
      h("ul", { class: "plain small" }, (r.explanation || []).map((x) => h("li", {}, x)))));
  }
}
