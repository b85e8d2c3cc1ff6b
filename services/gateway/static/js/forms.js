// Forms built from the JSON Schema of a command's payload
// (GET /api/v1/procedures/<kind>/payloads). The API validates; its errors
// ({code, message, errors: {field: [...] | {index: {...}}}}) are shown next to the
// fields they name, the rest above the submit button.
import { h, clear } from "./dom.js";
import { t, label, enumLabel, apiMessage } from "./i18n.js";
import { ApiError } from "./api.js";

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

// optional fields a person does not type (a file's hash comes with an upload, not by hand)
const HIDDEN = new Set(["sha256"]);
// rows to show at first for lists of objects (art. 5: a team of at least two)
const INITIAL_ROWS = { team: 2, parties: 1 };
const FACTS_EXAMPLE = '{"vehicle_category": "passenger_bus", "rated_seats": 50, "passengers": 63}';

class InputProblem extends Error {
  constructor(control, message) {
    super(message);
    this.control = control;
  }
}

function resolve(root, node) {
  let n = node || {};
  for (let i = 0; i < 10 && n.$ref; i++) {
    n = n.$ref === "#" ? root : root.$defs?.[n.$ref.replace("#/$defs/", "")] || {};
  }
  if (n.anyOf) {
    const alt = n.anyOf.map((a) => resolve(root, a)).find((a) => a.type !== "null");
    return { ...alt, nullable: true };
  }
  return n;
}

function typeOf(n) {
  const types = Array.isArray(n.type) ? n.type : n.type ? [n.type] : [];
  const base = types.find((x) => x !== "null") ||
    (n.enum ? typeof n.enum.find((v) => v !== null) : n.properties ? "object" : "string");
  return { base, nullable: n.nullable || types.includes("null") };
}

// ------------------------------------------------------------------ leaf controls

function leaf(name, required, input, readValue, hint) {
  const id = input.id || (input.id = nextId("f"));
  const errorEl = h("div", { class: "field-error", id: `${id}-error`, role: "alert" });
  input.setAttribute("aria-describedby", `${id}-error`);
  input.name = name;
  const wide = input.tagName === "TEXTAREA" || input.dataset.wide === "1";
  const el = h("div", { class: ["field", wide && "wide", required && "required"], dataset: { field: name } },
    h("label", { for: id }, t(`field.${name}`), required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null,
      hint ? h("span", { class: "hint" }, ` ${hint}`) : null),
    input, errorEl);
  const control = {
    el,
    read: () => readValue(control),
    locate: () => control,
    error(messages) {
      el.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      errorEl.textContent = messages.map(apiMessage).join(" ");
    },
    clear() {
      el.classList.remove("invalid");
      input.removeAttribute("aria-invalid");
      errorEl.textContent = "";
    },
  };
  return control;
}

const text = (v) => (v === undefined || v === null ? "" : String(v));

function toLocalInput(iso) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? "" : new Date(ms + 8 * 3600e3).toISOString().slice(0, 16);
}

function stringControl(name, n, required, value, ctx) {
  const long = (n.maxLength || 0) >= 1000;
  if (n.format === "date") {
    const input = h("input", { type: "date", value: text(value) });
    return leaf(name, required, input, () => input.value || undefined);
  }
  if (n.format === "date-time") {
    const input = h("input", { type: "datetime-local", value: toLocalInput(value) });
    return leaf(name, required, input,
      () => (input.value ? `${input.value.length === 16 ? input.value + ":00" : input.value}+08:00` : undefined),
      t("form.datetime_hint"));
  }
  let input;
  if (long) {
    input = h("textarea", { rows: 4, maxlength: n.maxLength });
    input.value = text(value);
  } else {
    const options = ctx.hints?.[name];
    const listId = options ? nextId("list") : null;
    input = h("input", { type: "text", value: text(value), maxlength: n.maxLength, list: listId,
      inputmode: n.format === "decimal" ? "decimal" : undefined, autocomplete: "off" });
    if (options) {
      input.dataset.wide = "0";
      ctx.datalists.push(h("datalist", { id: listId },
        options.map((o) => h("option", { value: o.value }, o.label || o.value))));
    }
  }
  return leaf(name, required, input, () => (input.value.trim() ? input.value.trim() : undefined));
}

function enumControl(name, n, required, value) {
  const values = n.enum.filter((v) => v !== null);
  if (values.length === 1 && values[0] === true) {
    const input = h("input", { type: "checkbox", checked: value === true });
    return leaf(name, required, input, () => input.checked);
  }
  const select = h("select", {},
    h("option", { value: "" }, required ? `— ${t("common.required")} —` : "—"),
    values.map((v, i) => h("option", { value: String(i), selected: v === value }, enumLabel(name, v))));
  return leaf(name, required, select, () => (select.value === "" ? undefined : values[Number(select.value)]));
}

function booleanControl(name, required, nullable, value) {
  if (nullable || !required) {
    const select = h("select", {},
      h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: value === true }, t("common.yes")),
      h("option", { value: "false", selected: value === false }, t("common.no")));
    return leaf(name, required, select,
      () => (select.value === "" ? undefined : select.value === "true"));
  }
  const input = h("input", { type: "checkbox", checked: value === true });
  return leaf(name, required, input, () => input.checked);
}

function numberControl(name, n, base, required, value) {
  const input = h("input", { type: "number", value: text(value), step: base === "integer" ? 1 : "any",
    min: n.minimum });
  return leaf(name, required, input, () => {
    if (input.value.trim() === "") return undefined;
    const v = Number(input.value);
    return Number.isNaN(v) ? input.value : v;
  });
}

function jsonControl(name, required, value) {
  const input = h("textarea", { rows: 3, class: "mono", spellcheck: "false",
    placeholder: name === "facts" ? FACTS_EXAMPLE : "{}" });
  input.value = value && Object.keys(value).length ? JSON.stringify(value) : "";
  if (name === "facts") input.title = t("form.json_hint", { example: FACTS_EXAMPLE });
  const control = leaf(name, required, input, () => {
    if (!input.value.trim()) return undefined;
    try {
      const parsed = JSON.parse(input.value);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("object");
      return parsed;
    } catch {
      throw new InputProblem(control, t("form.json_invalid"));
    }
  }, "JSON");
  return control;
}

function linesControl(name, required, value) {
  const input = h("textarea", { rows: 3 });
  input.value = Array.isArray(value) ? value.join("\n") : "";
  return leaf(name, required, input, () => {
    const items = input.value.split("\n").map((x) => x.trim()).filter(Boolean);
    return items.length ? items : undefined;
  }, t("form.lines_hint"));
}

function checkboxesControl(name, options, required, value) {
  const chosen = new Set(value || []);
  const boxes = options.map((v) => ({ v, input: h("input", { type: "checkbox", value: v, checked: chosen.has(v) }) }));
  const group = h("div", { class: "checks", role: "group", id: nextId("g") },
    boxes.map(({ v, input }) => h("label", { class: "check" }, input, ` ${enumLabel(name, v)}`)));
  group.dataset.wide = "1";
  return leaf(name, required, group, () => {
    const values = boxes.filter((b) => b.input.checked).map((b) => b.v);
    return values.length ? values : undefined;
  });
}

/** A field a view builds: its element and how to read it, with label and error line. */
export function customField(name, required, input, read, hint) {
  return leaf(name, required, input, read, hint);
}

/** Options with labels (and groups): checkboxes for a list, a select for one value. */
function choicesControl(name, options, required, value, many) {
  if (!many) {
    const select = h("select", {}, h("option", { value: "" }, required ? `— ${t("common.required")} —` : "—"),
      groupOptions(options, (o) => h("option", { value: o.value, selected: o.value === value }, o.label)));
    return leaf(name, required, select, () => select.value || undefined);
  }
  const chosen = new Set(value || []);
  const boxes = options.map((o) => ({ o, input: h("input", { type: "checkbox", value: o.value, checked: chosen.has(o.value) }) }));
  const picker = h("div", { class: "picker", role: "group", id: nextId("g") });
  let group = null;
  for (const { o, input } of boxes) {
    if (o.group && o.group !== group) { group = o.group; picker.append(h("div", { class: "group-title" }, group)); }
    picker.append(h("label", { dataset: { choice: o.value } }, input, ` ${o.label}`));
  }
  picker.dataset.wide = "1";
  return leaf(name, required, picker, () => {
    const values = boxes.filter((b) => b.input.checked).map((b) => b.o.value);
    return values.length ? values : undefined;
  });
}

function groupOptions(options, make) {
  const out = [];
  let current = null;
  for (const o of options) {
    if (!o.group) { out.push(make(o)); current = null; continue; }
    if (!current || current.label !== o.group) { current = h("optgroup", { label: o.group }); out.push(current); }
    current.append(make(o));
  }
  return out;
}

// ------------------------------------------------------------------ composite controls

function objectControl(root, schema, values, ctx, legend) {
  const required = new Set(schema.required || []);
  const children = {};
  const grid = h("div", { class: "grid" });
  for (const [name, node] of Object.entries(schema.properties || {})) {
    if (node.readOnly || HIDDEN.has(name)) continue;
    const child = fieldControl(root, name, node, required.has(name), values?.[name], ctx);
    children[name] = child;
    grid.append(child.el);
  }
  const errorEl = h("div", { class: "field-error", role: "alert" });
  const el = legend ? h("fieldset", { class: "group" }, h("legend", {}, legend), grid, errorEl)
    : h("div", { class: "object" }, grid, errorEl);
  const control = {
    el,
    read() {
      const out = {};
      for (const [name, child] of Object.entries(children)) {
        const v = child.read();
        if (v !== undefined) out[name] = v;
      }
      return out;
    },
    locate(segs) {
      const [first, ...rest] = segs;
      return first in children ? children[first].locate(rest) : control;
    },
    error(messages) {
      errorEl.textContent = messages.map(apiMessage).join(" ");
    },
    clear() {
      errorEl.textContent = "";
      Object.values(children).forEach((c) => c.clear());
    },
  };
  return control;
}

function rowsControl(root, name, itemSchema, required, minItems, values, ctx) {
  const rows = [];
  const list = h("div", { class: "rows" });
  const errorEl = h("div", { class: "field-error", role: "alert" });
  const addRow = (value) => {
    const row = objectControl(root, itemSchema, value, ctx);
    const remove = h("button", { type: "button", class: "link-button remove" }, t("common.remove"));
    const wrap = h("div", { class: "row" }, row.el, remove);
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(entry), 1);
      wrap.remove();
    });
    const entry = { row, wrap };
    rows.push(entry);
    list.append(wrap);
  };
  const initial = Math.max(minItems || 0, (values || []).length, INITIAL_ROWS[name] || 0);
  for (let i = 0; i < initial; i++) addRow(values?.[i]);
  const add = h("button", { type: "button", class: "link-button add", dataset: { add: name } },
    `+ ${t("common.add")}`);
  add.addEventListener("click", () => addRow());
  const el = h("fieldset", { class: ["group", "wide", required && "required"], dataset: { field: name } },
    h("legend", {}, t(`field.${name}`), required ? h("span", { class: "req" }, " *") : null),
    list, add, errorEl);
  const control = {
    el,
    read() {
      const out = rows.map(({ row }) => row.read()).filter((o) => Object.keys(o).length);
      return out.length ? out : undefined;
    },
    locate(segs) {
      const [first, ...rest] = segs;
      const i = Number(first);
      return Number.isInteger(i) && rows[i] ? rows[i].row.locate(rest) : control;
    },
    error(messages) {
      el.classList.add("invalid");
      errorEl.textContent = messages.map(apiMessage).join(" ");
    },
    clear() {
      el.classList.remove("invalid");
      errorEl.textContent = "";
      rows.forEach(({ row }) => row.clear());
    },
  };
  return control;
}

function fieldControl(root, name, node, required, given, ctx) {
  const n = resolve(root, node);
  const value = given === undefined && n.default !== null && typeof n.default !== "object" ? n.default : given;
  // a view may build a field itself (the facts of a judgment rule, a unit picker, ...)
  const custom = ctx.hints?.controls?.[name];
  if (custom) return custom({ name, required, value, field: customField });
  const choices = ctx.hints?.choices?.[name];
  if (choices) return choicesControl(name, choices, required, value, typeOf(n).base === "array");
  const { base, nullable } = typeOf(n);
  if (base === "object") {
    return n.properties ? objectControl(root, n, value, ctx, t(`field.${name}`))
      : jsonControl(name, required, value);
  }
  if (base === "array") {
    const items = resolve(root, n.items);
    const itemType = typeOf(items).base;
    if (itemType === "object" && items.properties) {
      return rowsControl(root, name, items, required, n.minItems, value, ctx);
    }
    if (items.enum) return checkboxesControl(name, items.enum.filter((v) => v !== null), required, value);
    return linesControl(name, required, value);
  }
  if (n.enum) return enumControl(name, n, required, value);
  if (base === "boolean") return booleanControl(name, required, nullable, value);
  if (base === "integer" || base === "number") return numberControl(name, n, base, required, value);
  return stringControl(name, n, required, value, ctx);
}

// ------------------------------------------------------------------ errors

function flatten(errors, prefix = [], out = []) {
  if (Array.isArray(errors)) {
    if (errors.every((e) => typeof e !== "object" || e === null)) out.push([prefix, errors.map(String)]);
    else errors.forEach((e, i) => flatten(e, [...prefix, String(i)], out));
  } else if (errors && typeof errors === "object") {
    for (const [k, v] of Object.entries(errors)) flatten(v, k === "_schema" ? prefix : [...prefix, k], out);
  } else if (errors !== undefined) {
    out.push([prefix, [String(errors)]]);
  }
  return out;
}

/**
 * A form for one command. onSubmit(payload) returns a promise; an ApiError it throws
 * is shown on the form (message on top, field errors beside their fields).
 */
export function commandForm({ schema, command, description, prefill, hints, submitLabel, onSubmit }) {
  const ctx = { hints, datalists: [] };
  const body = objectControl(schema, schema, prefill || {}, ctx);
  const formError = h("div", { class: "form-error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary", dataset: { submit: command } },
    submitLabel || label("command", command));
  const form = h("form", { class: "action-form", novalidate: true, dataset: { command } },
    description ? h("p", { class: "muted" }, description) : null,
    body.el, ctx.datalists, formError, h("div", { class: "actions" }, button));

  const showFormError = (message, list = []) => {
    clear(formError);
    formError.append(h("strong", {}, message));
    if (list.length) formError.append(h("ul", {}, list.map((x) => h("li", {}, x))));
    formError.hidden = false;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    body.clear();
    formError.hidden = true;
    let payload;
    try {
      payload = body.read();
    } catch (err) {
      if (!(err instanceof InputProblem)) throw err;
      err.control.error([err.message]);
      showFormError(t("form.invalid"));
      return;
    }
    button.disabled = true;
    form.classList.add("busy");
    try {
      await onSubmit(payload);
    } catch (err) {
      if (!(err instanceof ApiError)) {
        showFormError(String(err.message || err));
        return;
      }
      const rest = [];
      for (const [path, messages] of flatten(err.errors)) {
        const target = body.locate(path);
        if (target === body || path.length === 0) {
          rest.push(`${path.length ? path.map((p) => (/^\d+$/.test(p) ? `#${Number(p) + 1}` : t(`field.${p}`))).join(" › ") + ": " : ""}${messages.map(apiMessage).join(" ")}`);
        } else {
          target.error(messages);
        }
      }
      showFormError(`${err.message}${err.status ? ` (${err.status} ${err.code})` : ""}`, rest);
      form.querySelector("[aria-invalid=true], .invalid input, .invalid textarea")?.focus();
    } finally {
      button.disabled = false;
      form.classList.remove("busy");
    }
  });
  return form;
}
