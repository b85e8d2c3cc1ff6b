// The console's shell: session, navigation, language switch and a hash router.
import { session, signOut, get } from "./api.js";
import { h, clear, append } from "./dom.js";
import { t, label, lang, setLang, applyStatic } from "./i18n.js";
import { loginView } from "./views/login.js";
import { boardView } from "./views/board.js";
import { handoffView } from "./views/handoff.js";
import { newView } from "./views/new.js";
import { commandView } from "./views/command.js";
import { statsView } from "./views/stats.js";
import { alertsView } from "./views/alerts.js";
import { supervisionView } from "./views/supervision.js";

const ROUTES = [
  [/^#\/login$/, loginView, false],
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
  const current = location.hash.split(/[/?]/)[1] || "board";
  const items = [["board", "#/board"], CREATORS.has(me.role) && ["new", "#/new"],
    ["command", "#/command"], ["alerts", "#/alerts"],
    SUPERVISION.has(me.role) && ["supervision", "#/supervision"],
    ["stats", "#/stats"]].filter(Boolean);
  for (const [key, href] of items) {
    nav.append(h("a", { href, class: current === key ? "active" : null, dataset: { nav: key } }, t(`nav.${key}`)));
  }
  append(who, [h("strong", {}, me.display_name || me.user_id), " ",
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

async function render() {
  const mine = ++seq;
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash || "#/board";
  let match = null, fn = null, needsLogin = true;
  for (const [re, viewFn, auth] of ROUTES) {
    match = hash.match(re);
    if (match) { fn = viewFn; needsLogin = auth; break; }
  }
  if (!fn) { location.replace("#/board"); return; }
  if (needsLogin && !session()) { location.replace("#/login"); return; }
  header();
  calendarBanner();
  clear(view);
  view.append(h("p", { class: "muted loading" }, t("common.loading")));
  const ctx = { me: session(), alive: () => mine === seq, go, flash, rerender: render };
  try {
    const result = await fn(match.slice(1), ctx);
    if (mine !== seq) return;
    clear(view);
    view.append(result.el || result);
    cleanup = result.cleanup || null;
    view.querySelector("[autofocus]")?.focus();
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
document.getElementById("logout").addEventListener("click", () => {
  signOut();
  document.getElementById("flash").hidden = true;   // nothing of one user for the next
  document.getElementById("calendar-banner").hidden = true;
  calendarStatus = null;
  go("#/login");
});
window.addEventListener("liandong:unauthenticated", () => {
  flash(t("login.expired"), "error");
  go("#/login");
});
window.addEventListener("hashchange", render);
setLang(lang());
render();
