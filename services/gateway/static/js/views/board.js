// Board: open handoffs the caller may see (GET /api/v1/handoffs), nearest deadline first.
import { get, download } from "../api.js";
import { unitName } from "../units.js";
import { h, clear, formatTime, formatDuration, ageOf, debounce } from "../dom.js";
import { t, label, deadlineTitle } from "../i18n.js";
import { KINDS, COUNTIES, AGENCIES, DOMAINS, STATES, stateBadge, timeLeft, select, errorNote } from "./common.js";

const FILTERS = ["kind", "county", "agency", "domain", "state", "q", "overdue", "all"];

export async function boardView([query], ctx) {
  const params = new URLSearchParams(query || "");
  const filters = Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || ""]));

  const controls = {
    kind: select("kind", KINDS.map((k) => ({ value: k, label: label("kind", k) })), filters.kind),
    county: select("county", COUNTIES.map((c) => ({ value: c, label: label("county", c) })), filters.county),
    agency: select("agency", AGENCIES.map((a) => ({ value: a, label: label("agency", a) })), filters.agency),
    domain: select("domain", DOMAINS.map((d) => ({ value: d, label: label("domain", d) })), filters.domain),
    state: select("state", KINDS.map((k) => ({ group: label("kind", k),
      options: STATES[k].map((s) => ({ value: s, label: label("state", s) })) })), filters.state),
    q: h("input", { type: "search", name: "q", id: "filter-q", value: filters.q, placeholder: t("board.search") }),
    overdue: h("input", { type: "checkbox", name: "overdue", id: "filter-overdue", checked: filters.overdue === "true" }),
    all: h("input", { type: "checkbox", name: "all", id: "filter-all", checked: filters.all === "true" }),
  };
  const current = () => {
    const out = {};
    for (const f of FILTERS) {
      const el = controls[f];
      const v = el.type === "checkbox" ? (el.checked ? "true" : "") : el.value.trim();
      if (v) out[f] = v;
    }
    return out;
  };

  const status = h("span", { class: "muted", id: "board-count" });
  const tableBox = h("div", { class: "table-wrap" });
  const load = async () => {
    if (!ctx.alive()) return;            // a late (debounced) call after leaving the board
    const f = current();
    history.replaceState(null, "", `#/board${Object.keys(f).length ? "?" + new URLSearchParams(f) : ""}`);
    try {
      const rows = await get("/handoffs", f);
      if (!ctx.alive()) return;
      clear(tableBox).append(table(rows));
      status.textContent = t("common.count", { n: rows.length });
    } catch (err) {
      if (!ctx.alive()) return;
      clear(tableBox).append(errorNote(err));
    }
  };
  for (const [name, el] of Object.entries(controls)) {
    el.addEventListener(name === "q" ? "input" : "change", name === "q" ? debounce(load, 300) : load);
  }

  const exportButton = (format) => h("button", { type: "button", class: "secondary", dataset: { export: format },
    onclick: async () => {
      try {
        await download("/handoffs", { ...current(), format }, `handoffs.${format}`);
      } catch (err) {
        ctx.flash(err.message, "error");
      }
    } }, `${t("board.export")} ${format.toUpperCase()}`);

  const filterField = (name, el) => h("label", { class: "filter" }, h("span", {}, t(`filter.${name}`)), el);
  const bar = h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
    filterField("kind", controls.kind), filterField("county", controls.county),
    filterField("agency", controls.agency), filterField("domain", controls.domain),
    filterField("state", controls.state),
    h("label", { class: "filter grow" }, h("span", {}, t("board.search")), controls.q),
    h("label", { class: "check" }, controls.overdue, ` ${t("board.overdue")}`),
    h("label", { class: "check" }, controls.all, ` ${t("board.closed")}`));

  await load();
  const el = h("div", { class: "board" },
    h("div", { class: "page-head" },
      h("h1", {}, t("board.title")), status,
      h("div", { class: "spacer" }),
      h("button", { type: "button", class: "secondary", id: "board-refresh", onclick: load }, t("common.refresh")),
      exportButton("csv"), exportButton("xlsx")),
    bar, tableBox);
  return { el, reload: load };
}

function table(rows) {
  if (!rows.length) return h("p", { class: "muted empty", id: "board-empty" }, t("common.empty"));
  const head = ["board.case", "board.kind", "board.state", "board.county", "board.owner", "board.counterpart",
    "board.age", "board.deadline", "board.due", "board.left"];
  return h("table", { class: "grid-table", id: "board-table" },
    h("thead", {}, h("tr", {}, head.map((k) => h("th", { scope: "col" }, t(k))))),
    h("tbody", {}, rows.map((r) => {
      const left = timeLeft(r);
      const age = ageOf(r.created_at);
      return h("tr", { class: [left.cls === "overdue" && "overdue", left.cls === "soon" && "soon", !r.open && "closed"],
        dataset: { handoffId: r.handoff_id, caseNumber: r.case_number, state: r.state, kind: r.kind } },
      h("td", {}, h("a", { href: `#/handoff/${r.kind}/${r.handoff_id}`, class: "case" }, r.case_number)),
      h("td", {}, label("kind", r.kind), r.domain ? h("div", { class: "muted small" }, label("domain", r.domain)) : null),
      h("td", {}, stateBadge(r.state)),
      h("td", {}, label("county", r.county)),
      h("td", {}, unitName(r.owner_unit)),
      h("td", {}, r.counterpart_unit ? unitName(r.counterpart_unit) : (r.counterpart_agency ? label("agency", r.counterpart_agency) : "—")),
      h("td", { class: "num" }, age === null ? "—" : formatDuration(age)),
      h("td", {}, r.deadline ? deadlineTitle(r.deadline) : "—"),
      h("td", { class: "num" }, r.deadline ? formatTime(r.deadline.due) : "—"),
      h("td", { class: ["num", "left", left.cls] }, left.text));
    })));
}
