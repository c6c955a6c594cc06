// Boot, session, the shell (side navigation + top bar) and the hash router.
import { api, onUnauthorized, setToken, token } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { LANGUAGES, lang, setLang, t } from "./i18n.js";
import * as approvals from "./pages/approvals.js";
import * as audit from "./pages/audit.js";
import * as dashboard from "./pages/dashboard.js";
import * as gitops from "./pages/gitops.js";
import * as history from "./pages/history.js";
import * as hosts from "./pages/hosts.js";
import * as login from "./pages/login.js";
import * as logs from "./pages/logs.js";
import * as run from "./pages/run.js";
import * as schedules from "./pages/schedules.js";
import * as sopRun from "./pages/sop-run.js";
import * as sops from "./pages/sops.js";
import * as task from "./pages/task.js";
import * as terminal from "./pages/terminal.js";
import * as tokens from "./pages/tokens.js";

const NAV = [
  ["#/", "Dashboard", dashboard],
  ["#/run", "Run", run],
  ["#/history", "History", history],
  ["#/hosts", "Hosts", hosts],
  ["#/sops", "SOPs", sops],
  ["#/approvals", "Approvals", approvals],
  ["#/schedules", "Schedules", schedules],
  ["#/gitops", "GitOps", gitops],
  ["#/terminal", "Terminal", terminal],
  ["#/logs", "Logs", logs],
  ["#/tokens", "API tokens", tokens],
  ["#/audit", "Audit trail", audit],
];

const ROUTES = [
  [/^#\/?$/, dashboard],
  [/^#\/run$/, run],
  [/^#\/tasks\/(\d+)$/, task],
  [/^#\/history$/, history],
  [/^#\/hosts$/, hosts],
  [/^#\/sops$/, sops],
  [/^#\/sops\/new$/, sops, "new"],
  [/^#\/sops\/([^/]+)$/, sops, "one"],
  [/^#\/sop-runs$/, sops, "runs"],
  [/^#\/sop-runs\/(\d+)$/, sopRun],
  [/^#\/approvals$/, approvals],
  [/^#\/schedules$/, schedules],
  [/^#\/gitops$/, gitops],
  [/^#\/gitops\/syncs\/(\d+)$/, gitops, "sync"],
  [/^#\/terminal$/, terminal],
  [/^#\/terminal\/host\/([^/]+)$/, terminal, "open"],
  [/^#\/terminal\/replay\/(\d+)$/, terminal, "replay"],
  [/^#\/logs$/, logs],
  [/^#\/tokens$/, tokens],
  [/^#\/audit$/, audit],
];

const app = document.getElementById("app");
export const session = { user: null };
let cleanup = null;
let shown = 0; // counts renders: a page that finishes loading after the user left it is stopped at once

/** The current route's path and query: "#/history?status=failed" → ["#/history", {status: "failed"}]. */
export function currentRoute() {
  const [path, qs] = (window.location.hash || "#/").split("?");
  return [path, Object.fromEntries(new URLSearchParams(qs || ""))];
}

/** Change the query of the current route without re-rendering (so a reload keeps filters). */
export function setQuery(query) {
  const [path] = currentRoute();
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v != null)).toString();
  replaceHash(`${path}${qs ? `?${qs}` : ""}`);
}
function replaceHash(hash) {
  window.history.replaceState(null, "", hash);
}

export function go(hash) {
  if (window.location.hash === hash) render(); else window.location.hash = hash;
}

async function changeLanguage(value) {
  setLang(value);
  if (session.user) {
    try { await api("preferences", { method: "PUT", body: { language: value } }); }
    catch (err) { toast(err.message, true); }
  }
  render();
}

function languageSelect() {
  return h("select", { "aria-label": "language", id: "lang-select", onchange: (e) => changeLanguage(e.target.value) },
    LANGUAGES.map(([code, name]) => h("option", { value: code, selected: code === lang() }, name)));
}

async function logout() {
  try { await api("auth/logout", { method: "POST" }); } catch { /* already gone */ }
  setToken(null);
  session.user = null;
  window.location.hash = "#/";
  render();
}

function shell(path) {
  const links = NAV.map(([href, label]) => h("a", {
    href, class: (href === "#/" ? path === "#/" || path === "#" : path.startsWith(href) || (href === "#/sops" && path.startsWith("#/sop-runs"))) ? "active" : null,
    "data-nav": href.slice(2) || "dashboard",
  }, t(label)));
  const title = h("div", { class: "title" });
  const content = h("div", { class: "content", id: "content" });
  const u = session.user;
  const top = h("header", { class: "top" }, title, languageSelect(),
    h("span", { class: "who" }, h("strong", { id: "whoami" }, u.username), h("span", { class: "role", id: "role" }, u.role)),
    h("button", { id: "logout", onclick: logout }, t("Log out")));
  clear(app).append(h("div", { class: "shell" },
    h("nav", { class: "side" }, h("div", { class: "brand" }, h("img", { src: "static/favicon.svg", alt: "" }), "small-yi"),
      links, h("div", { class: "spacer" }), h("div", { class: "version" }, t("Ops automation over SSH"))),
    h("div", { class: "main" }, top, content)));
  approvals.paintBadge();
  return { title, content };
}

export function render() {
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const mine = ++shown;
  if (!session.user) {
    login.render(app, { languageSelect, onLogin: start });
    return;
  }
  const [path, query] = currentRoute();
  let page = dashboard, params = [], mode = null;
  for (const [re, mod, m] of ROUTES) {
    const found = path.match(re);
    if (found) { page = mod; params = found.slice(1).map(decodeURIComponent); mode = m || null; break; }
  }
  const { title, content } = shell(path);
  document.title = `small-yi`;
  const ctx = { title, content, query, params, mode, session, go, setQuery };
  Promise.resolve(page.render(ctx)).then((fn) => {
    const stop = typeof fn === "function" ? fn : null;
    if (mine === shown) cleanup = stop;
    // the user moved on while this page was loading: its timers and streams would run unseen forever
    else if (stop) { try { stop(); } catch { /* page already gone */ } }
  })
    .catch((err) => { content.append(h("p", { class: "error" }, err.message || String(err))); });
}

async function start() {
  try {
    const me = await api("auth/me");
    session.user = me;
    approvals.watchBadge(session);
    try {
      const prefs = await api("preferences");
      if (prefs.language) setLang(prefs.language);
      else await api("preferences", { method: "PUT", body: { language: lang() } });
    } catch { /* preferences are a nicety */ }
  } catch {
    session.user = null;
    if (token()) setToken(null);
  }
  render();
}

onUnauthorized(() => {
  if (!session.user) return;
  session.user = null;
  setToken(null);
  toast(t("Your session ended; log in again."), true);
  render();
});
window.addEventListener("hashchange", () => render());
start();
