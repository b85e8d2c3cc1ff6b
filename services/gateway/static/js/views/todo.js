// 待办 (my work): what the signed-in unit must do next, across every kind of handoff,
// nearest deadline first (GET /api/v1/todo: the tracker knows who acts next, with the
// board's visibility). Each item opens its action's form in place: one click.
import { get, procedure, COLLECTION } from "../api.js";
import { h, clear, formatTime } from "../dom.js";
import { t, label } from "../i18n.js";
import { unitName } from "../units.js";
import { stateBadge, timeLeft, errorNote } from "./common.js";
import { actionsPanel } from "./parts.js";

const COMMAND_KINDS = new Set(["joint_action", "assistance_request"]);

export function pageOf(row) {
  return COMMAND_KINDS.has(row.kind) ? `#/command/${row.kind}/${row.handoff_id}` : `#/handoff/${row.kind}/${row.handoff_id}`;
}

export async function todoView(_args, ctx) {
  const status = h("span", { class: "muted", id: "todo-count" });
  const list = h("div", { class: "todo-list", id: "todo-list" });
  const load = async () => {
    if (!ctx.alive()) return;
    try {
      const rows = await get("/todo");
      if (!ctx.alive()) return;
      status.textContent = t("todo.count", { n: rows.length, o: rows.filter((r) => r.overdue).length });
      clear(list).append(...(rows.length ? rows.map((r) => card(r, ctx)) : [h("p", { class: "muted empty", id: "todo-empty" }, t("todo.empty"))]));
      ctx.setTodoCount?.(rows.length);
    } catch (err) {
      if (!ctx.alive()) return;
      clear(list).append(errorNote(err));
    }
  };
  await load();
  const el = h("div", { class: "todo" },
    h("div", { class: "page-head" }, h("h1", {}, t("todo.title")), status, h("div", { class: "spacer" }),
      h("button", { type: "button", class: "secondary", id: "todo-refresh", onclick: load }, t("common.refresh"))),
    ctx.me.role === "coordinator" || ctx.me.role === "operator" ? h("p", { class: "muted small" }, t("todo.observer")) : null,
    list);
  // a live change reloads the list, unless a form is open in it (then: on submit)
  const reload = () => (list.querySelector(".todo-form:not(:empty)") ? null : load());
  return { el, reload };
}

function card(r, ctx) {
  const left = timeLeft(r);
  const form = h("div", { class: "todo-form" });
  const open = async (command) => {
    clear(form).append(h("p", { class: "muted" }, t("common.loading")));
    try {
      const collection = COLLECTION[r.kind];
      const [rec, table] = await Promise.all([get(`/${collection}/${r.handoff_id}`), procedure(r.kind)]);
      clear(form).append(actionsPanel({ kind: r.kind, collection, id: r.handoff_id, rec, table, ctx, open: command }));
      form.querySelector("details[open] input, details[open] select, details[open] textarea")?.focus();
    } catch (err) {
      clear(form).append(errorNote(err));
    }
  };
  const who = [r.owner_unit, r.counterpart_unit].filter(Boolean).map(unitName).join(" → ");
  return h("article", { class: ["todo-item", left.cls], dataset: { handoffId: r.handoff_id, kind: r.kind, state: r.state, caseNumber: r.case_number } },
    h("div", { class: "todo-head" },
      h("span", { class: "kind-tag" }, label("kind", r.kind)),
      h("a", { href: pageOf(r), class: "case" }, r.case_number),
      stateBadge(r.state),
      h("span", { class: "spacer" }),
      h("span", { class: ["left", left.cls], title: r.deadline ? formatTime(r.deadline.due) : null }, left.text)),
    h("div", { class: "todo-meta muted small" },
      r.county ? `${label("county", r.county)} · ` : "", who,
      r.deadline ? ` · ${r.deadline.title || ""} ${formatTime(r.deadline.due)}` : ""),
    r.todo?.length ? h("div", { class: "todo-actions" }, r.todo.map((c) =>
      h("button", { type: "button", class: "primary small-button", dataset: { todo: c }, onclick: () => open(c) }, label("command", c))))
      : h("a", { href: pageOf(r), class: "secondary" }, t("common.details")),
    form);
}
