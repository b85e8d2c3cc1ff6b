// The console's shell: session, navigation, language switch and a hash router.
import { session, logOut, get } from "./api.js";
import { h, clear, append } from "./dom.js";
import { t, label, lang, setLang, applyStatic } from "./i18n.js";
import { loginView } from "./views/login.js";
import { boardView } from "./views/board.js";
import { handoffView } from "./views/handoff.js";
import { newView } from "./views/new.js";
import { commandView } from "./views/command.js";
import { statsView } from "./views/stats.js";
import { todoView } from "./views/todo.js";
import { loadUnits } from "./units.js";
import { startLive, stopLive, liveState } from "./live.js";
import { alertsView } from "./views/alerts.js";
import { supervisionView } from "./views/supervision.js";

const ROUTES = [
  [/^#\/login$/, loginView, false],
  [/^#\/todo$/, todoView, true],
  [/^#\/board(?:\?(.*))?$/, boardView, true],
  [/^#\/handoff\/([a-z_]+)\/([\w-]+)$/, handoffView, true],
  [/^#\/new(?:\/([a-z_]+))?$/, newView, true],
  [/^#\/command(?:\/([a-z_]+)\/([\w-]+))?$/, commandView, true],
  [/^#\/stats$/, statsView, true],
  [/^#\/alerts(?:\/([\w-]+))?$/, alertsView, true],
  [/^#\/supervision(?:\/(import|decision)(?:\/(.+))?)?$/, supervisionView, true],
];

// roles that open cases of some kind (the new page asks the procedures which exactly)
const CREATORS = new Set(["enforcement_unit", "police", "county_command", "market_regulation"]);
// roles of 以罚代刑 supervision: candidates and imports, or the inquiries addressed to them
const SUPERVISION = new Set(["procuratorate", "coordinator", "operator", "agency_head"]);

const view = document.getElementById("view");
let cleanup = null;
let currentView = null;   // the view on screen (its reload() refreshes it in place)
let seq = 0;

export function flash(message, kind = "ok") {
  const el = document.getElementById("flash");
  el.textContent = message;
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function header() {
  const me = session();
  const nav = clear(document.getElementById("nav"));
  const who = clear(document.getElementById("who"));
  document.getElementById("logout").hidden = !me;
  document.getElementById("lang").textContent = lang() === "en" ? "中文" : "EN";
  applyStatic();
  document.title = `${t("app.title")} · 联动 Liandong`;
  if (!me) return;
  const current = location.hash.split(/[/?]/)[1] || "todo";
  const items = [["todo", "#/todo"], ["board", "#/board"], CREATORS.has(me.role) && ["new", "#/new"],
    ["command", "#/command"], ["alerts", "#/alerts"],
    SUPERVISION.has(me.role) && ["supervision", "#/supervision"],
    ["stats", "#/stats"]].filter(Boolean);
  for (const [key, href] of items) {
    nav.append(h("a", { href, class: current === key ? "active" : null, dataset: { nav: key } }, t(`nav.${key}`),
      key === "todo" ? h("span", { class: "count", id: "nav-todo-count", hidden: todoCount === null }, String(todoCount ?? "")) : null));
  }
  append(who, [h("span", { class: ["live", liveState() === "live" ? null : "off"], id: "live-state", title: t(`live.${liveState()}`) }, liveState() === "live" ? "●" : "○"), " ",
    h("strong", {}, me.display_name || me.user_id), " ",
    h("span", { class: "role", dataset: { role: me.role } }, label("role", me.role)),
    me.county ? h("span", { class: "muted" }, ` · ${label("county", me.county)}`) : null]);
}

// Roles told when a year's deadlines rest on a provisional holiday calendar (issue 19).
const CALENDAR_WATCHERS = new Set(["coordinator", "operator"]);
let calendarStatus = null;   // {user, status}: asked once per signed-in user

async function calendarBanner() {
  const el = document.getElementById("calendar-banner");
  const me = session();
  if (!me || !CALENDAR_WATCHERS.has(me.role)) { el.hidden = true; calendarStatus = null; return; }
  if (!calendarStatus || calendarStatus.user !== me.user_id) {
    try {
      calendarStatus = { user: me.user_id, status: await get("/calendar") };
    } catch (err) {
      el.hidden = true;   // the board itself shows what went wrong
      return;
    }
  }
  const years = calendarStatus.status.provisional_years || [];
  el.textContent = years.length ? t("calendar.provisional", { years: years.join("、") }) : "";
  el.hidden = !years.length;
}

let todoCount = null;

/** The number beside 待办 in the navigation. */
export function setTodoCount(n) {
  todoCount = n;
  const el = document.getElementById("nav-todo-count");
  if (el) { el.textContent = String(n); el.hidden = false; }
}

export async function refreshTodoCount() {
  if (!session()) return;
  try { setTodoCount((await get("/todo")).length); } catch { /* the view shows errors */ }
}

// ------------------------------------------------------------------ live updates
/** Whether the user is in the middle of typing (a reload would lose it). */
function busy() {
  const active = document.activeElement;
  if (active && view.contains(active) && active.closest("form")) return true;
  return [...view.querySelectorAll("form input, form textarea, form select")].some((el) =>
    (el.type === "checkbox" || el.type === "radio") ? el.checked !== el.defaultChecked
      : el.tagName === "SELECT" ? [...el.options].some((o) => o.selected !== o.defaultSelected)
        : el.value !== el.defaultValue);
}

let changeTimer = null;
function onChange() {
  clearTimeout(changeTimer);
  changeTimer = setTimeout(async () => {
    if (!session() || location.hash.startsWith("#/login")) return;
    if (currentView?.reload) {
      await currentView.reload();
    } else if (!busy()) {
      await render(true);
    } else {
      flash(t("live.changed"), "ok");
    }
    if (!location.hash.startsWith("#/todo")) refreshTodoCount();
  }, 300);
}

function onLiveState(state) {
  const el = document.getElementById("live-state");
  if (!el) return;
  el.textContent = state === "live" ? "●" : "○";
  el.className = `live ${state === "live" ? "" : "off"}`;
  el.title = t(`live.${state}`);
}

async function render(quiet = false) {
  const mine = ++seq;
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash || "#/todo";
  let match = null, fn = null, needsLogin = true;
  for (const [re, viewFn, auth] of ROUTES) {
    match = hash.match(re);
    if (match) { fn = viewFn; needsLogin = auth; break; }
  }
  if (!fn) { location.replace("#/todo"); return; }
  if (needsLogin && !session()) { location.replace("#/login"); return; }
  if (session()) await loadUnits();
  if (mine !== seq) return;
  header();
  calendarBanner();
  if (session()) startLive(onChange, onLiveState);
  if (!quiet) {
    clear(view);
    view.append(h("p", { class: "muted loading" }, t("common.loading")));
  }
  const ctx = { me: session(), alive: () => mine === seq, go, flash, rerender: render, setTodoCount, busy };
  try {
    const scroll = window.scrollY;
    const result = await fn(match.slice(1), ctx);
    if (mine !== seq) return;
    clear(view);
    view.append(result.el || result);
    cleanup = result.cleanup || null;
    currentView = result;
    if (session() && !hash.startsWith("#/todo")) refreshTodoCount();
    if (quiet) window.scrollTo(0, scroll);
    else view.querySelector("[autofocus]")?.focus();
  } catch (err) {
    if (mine !== seq) return;
    clear(view);
    view.append(h("div", { class: "panel error-panel", role: "alert" },
      h("h2", {}, t("common.error")), h("p", {}, err.message || String(err)),
      err.status ? h("p", { class: "muted" }, `HTTP ${err.status} · ${err.code}`) : null));
  }
}

document.getElementById("lang").addEventListener("click", () => {
  setLang(lang() === "en" ? "zh" : "en");
  render();
});
document.getElementById("logout").addEventListener("click", async () => {
  await logOut();                                  // revoked at every service
  stopLive();
  document.getElementById("flash").hidden = true;   // nothing of one user for the next
  document.getElementById("calendar-banner").hidden = true;
  calendarStatus = null;
  go("#/login");
});
window.addEventListener("liandong:unauthenticated", () => {
  stopLive();
  flash(t("login.expired"), "error");
  go("#/login");
});
window.addEventListener("hashchange", () => render());
setLang(lang());
render();

// Tables turn into cards on a phone: each cell carries its column's name (data-label).
function labelCells(root) {
  for (const table of root.querySelectorAll("table.grid-table:not([data-labelled])")) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((td, i) => { if (names[i]) td.dataset.label = names[i]; });
    }
    table.dataset.labelled = "1";
  }
}
new MutationObserver(() => labelCells(view)).observe(view, { childList: true, subtree: true });
