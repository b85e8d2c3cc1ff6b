// Panels shared by the handoff page and the command view.
import { get, post, unitHints } from "../api.js";
import { unitName } from "../units.js";
import { h, formatTime } from "../dom.js";
import { t, label, lang, article, deadlineTitle } from "../i18n.js";
import { commandForm } from "../forms.js";
import { stateBadge, panel, detailsList } from "./common.js";

/** Forms for the next actions the service returned for this user (never guessed here). */
export function actionsPanel({ kind, collection, id, rec, table, ctx, open }) {
  const next = rec.next_actions || [];
  if (!next.length) return panel(t("handoff.actions"), h("p", { class: "muted", id: "no-actions" }, t("handoff.no_actions")));
  const byCommand = Object.fromEntries((table?.table || []).map((row) => [row.command, row]));
  // open the step that moves the case on (not a "same state" one like attach_documents)
  const primary = (open && next.includes(open) ? open : null) ??
    next.find((c) => byCommand[c] && byCommand[c].to !== "same") ?? next[0];
  return panel(t("handoff.actions"), h("div", { class: "action-list", id: "actions" }, next.map((command) => {
    const step = byCommand[command] || {};
    const schema = table?.payloads?.[command] || { type: "object", properties: {} };
    const description = [lang() === "en" ? step.title : null, article(step.article)]
      .filter(Boolean).join(" · ");
    const form = commandForm({
      schema, command, description, prefill: prefillFor(kind, command, rec, table),
      hints: { ...unitHints(table?.units, command),
        kind: (table?.documents || []).map((d) => ({ value: d.id, label: lang() === "en" ? d.title_en || d.title : d.title })) },
      onSubmit: async (payload) => {
        const updated = await post(`/${collection}/${id}/${command}`, payload);
        ctx.flash(`${t("common.saved")}: ${label("command", command)} → ${label("state", updated.state)}`);
        ctx.rerender();
      },
    });
    return h("details", { class: "action", open: command === primary, dataset: { action: command } },
      h("summary", {}, h("strong", {}, label("command", command)),
        step.title && lang() === "en" ? null : h("span", { class: "muted" }, step.title ? ` ${step.title}` : "")),
      form);
  })));
}

function prefillFor(kind, command, rec, table) {
  if (kind !== "criminal_referral") return {};
  if (command === "transfer" || command === "attach_documents") {
    const have = rec.documents || {};
    const missing = (table?.documents || []).filter((d) => !have[d.id]);
    return { documents: missing.map((d) => ({ kind: d.id, title: d.title })) };
  }
  return {};
}

/** A page's reload on a live change: render again (quietly) only when the tracker has
 *  the handoff past the step shown -- another user moved it -- and nobody is typing.
 *  The user's own step re-renders the page already (ctx.rerender after a submit). */
export function stepReload(id, shownStep, ctx) {
  return async () => {
    try {
      const row = await get(`/handoffs/${id}`);
      if (ctx.alive() && row.step > shownStep && !ctx.busy()) ctx.rerender(true);
    } catch { /* not tracked yet, or no longer visible: keep the page */ }
  };
}

/** The timeline from the tracker (the read model every role shares) or, when the
 *  tracker has not caught up yet, the service's own steps. */
export function timelinePanel(tracked, own, table) {
  const deadlines = table?.deadlines || {};
  const titles = Object.fromEntries((table?.table || []).map((r) => [r.command, r.title]));
  const steps = tracked?.length
    ? tracked.map((e) => ({ step: e.step, command: e.command, state: e.state, at: e.at,
      unit: e.actor_unit, role: e.actor_role, details: e.data?.details, satisfied: e.data?.satisfied || [] }))
    : (own || []).map((e) => ({ step: e.step, command: e.command, state: e.to_state, at: e.at,
      unit: e.actor?.unit, role: e.actor?.role, details: e.details, satisfied: [] }));
  if (!steps.length) return panel(t("handoff.timeline"), h("p", { class: "muted" }, t("common.none")));
  return panel(t("handoff.timeline"), h("ol", { class: "timeline", id: "timeline" }, steps.map((s) =>
    h("li", { dataset: { step: s.step, command: s.command } },
      h("div", { class: "when" }, formatTime(s.at)),
      h("div", { class: "what" },
        h("strong", {}, label("command", s.command)), " → ", stateBadge(s.state),
        titles[s.command] && lang() === "zh" ? h("div", { class: "muted small" }, titles[s.command]) : null,
        h("div", { class: "muted small" }, `${t("handoff.by")}: ${unitName(s.unit)}${s.role ? ` (${label("role", s.role)})` : ""}`),
        s.satisfied.length ? h("div", { class: "small" }, s.satisfied.map((d) =>
          h("span", { class: ["pill", d.on_time ? "ok" : "late"] },
            `${deadlineTitle({ id: d.id, title: deadlines[d.id]?.title })}: ${d.on_time ? t("handoff.on_time") : t("handoff.late")}`))) : null,
        detailsList(s.details))))));
}

