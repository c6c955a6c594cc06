// History: tasks and per-host results from the archive, filtered by status, host, time range and
// command text; the filters live in the URL so a reload (or a shared link) keeps them.
import { api } from "../api.js";
import { badge, fill, fmtBytes, fmtDuration, fmtTime, h } from "../dom.js";
import { st, t } from "../i18n.js";
import { prepareRerun } from "./run.js";
import { pager, resultOutput } from "./shared.js";

const TASK_STATUSES = ["queued", "running", "success", "failed", "cancelled", "interrupted"];
const HOST_STATUSES = ["pending", "running", "success", "failed", "timeout", "unreachable", "cancelled", "interrupted"];
const PAGE = 50;

/** "24h" stays a duration ago; a datetime-local value becomes an ISO timestamp. */
function timeParam(value) {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?(ms|s|m|h)/.test(value)) return value;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

export async function render({ title, content, query, setQuery, go }) {
  title.append(h("h1", {}, t("History")));
  const view = query.view === "results" ? "results" : "tasks";
  const tabs = h("div", { class: "tabs" },
    h("button", { class: view === "tasks" ? "active" : null, id: "tab-tasks", onclick: () => go("#/history") }, t("Tasks")),
    h("button", { class: view === "results" ? "active" : null, id: "tab-results", onclick: () => go("#/history?view=results") }, t("Results per host")));
  content.append(tabs);
  if (view === "tasks") await tasksView(content, query, setQuery, go);
  else await resultsView(content, query, setQuery);
}

function statusSelect(id, statuses, value) {
  return h("select", { name: "status", id }, h("option", { value: "" }, t("any status")),
    statuses.map((s) => h("option", { value: s, selected: s === value }, st(s))));
}

function timeInputs(query) {
  return [
    h("input", { name: "since", id: "f-since", placeholder: t("since: 24h or a date"), value: query.since || "", size: 16, title: t("a duration ago (30m, 24h) or a date") }),
    h("input", { name: "until", id: "f-until", placeholder: t("until"), value: query.until || "", size: 16 }),
  ];
}

async function tasksView(content, query, setQuery, go) {
  const status = statusSelect("f-status", TASK_STATUSES, query.status);
  const command = h("input", { type: "search", name: "command", id: "f-command", placeholder: t("command contains"), value: query.command || "" });
  const by = h("input", { name: "created_by", id: "f-user", placeholder: t("user"), value: query.created_by || "", size: 10 });
  const [since, until] = timeInputs(query);
  const error = h("p", { class: "error" });
  const body = h("tbody", { id: "tasks-body" });
  const foot = h("div");
  const form = h("form", { class: "toolbar", id: "history-form", onsubmit: (e) => { e.preventDefault(); load(0); } },
    status, command, by, since, until, h("button", { class: "primary", type: "submit" }, t("Search")));
  content.append(form, error, h("div", { class: "table-wrap" }, h("table", { id: "tasks-table" },
    h("thead", {}, h("tr", {}, ["#", t("status"), t("hosts"), t("results"), t("command"), t("by"), t("created"), t("duration"), ""].map((x) => h("th", {}, x)))),
    body)), foot);
  status.addEventListener("change", () => load(0));

  let latest = 0;
  async function load(offset) {
    const mine = ++latest;
    const q = { status: status.value, command: command.value, created_by: by.value, since: since.value, until: until.value };
    setQuery(q);
    error.textContent = "";
    let page;
    try {
      page = await api("tasks", { query: { ...q, since: timeParam(q.since), until: timeParam(q.until), limit: PAGE, offset } });
    } catch (err) { error.textContent = err.message; return; }
    if (mine !== latest) return; // a newer search answered first
    fill(body, page.items.length ? page.items.map((task) => h("tr", { class: "clickable", "data-task": task.id, "data-status": task.status, onclick: (e) => { if (!(e.target instanceof HTMLButtonElement)) go(`#/tasks/${task.id}`); } },
      h("td", { class: "mono" }, h("a", { href: `#/tasks/${task.id}` }, String(task.id))),
      h("td", {}, badge(task.status, st(task.status))),
      h("td", { class: "num" }, String(task.host_count)),
      h("td", { class: "nowrap" }, Object.entries(task.counts || {}).map(([k, v]) => [badge(k, `${st(k)} ${v}`), " "])),
      h("td", { class: "cmd", title: task.command }, task.command),
      h("td", {}, task.created_by),
      h("td", { class: "nowrap small" }, fmtTime(task.created_at)),
      h("td", { class: "num small" }, fmtDuration(task.duration)),
      h("td", {}, h("button", { class: "small", onclick: () => { prepareRerun(task); go("#/run"); } }, t("Run again")))))
      : h("tr", {}, h("td", { colspan: 9, class: "empty" }, t("No tasks match."))));
    fill(foot, pager(offset, page.items.length, page.total, load, { size: PAGE }));
  }
  await load(0);
}

async function resultsView(content, query, setQuery) {
  const host = h("input", { name: "host", id: "f-host", placeholder: t("host name"), value: query.host || "", size: 14 });
  const status = statusSelect("f-status", HOST_STATUSES, query.status);
  const task = h("input", { name: "task", id: "f-task", placeholder: t("task #"), value: query.task || "", size: 6 });
  const [since, until] = timeInputs(query);
  const error = h("p", { class: "error" });
  const body = h("tbody", { id: "results-body" });
  const foot = h("div");
  content.append(h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); load(0); } },
    host, status, task, since, until, h("button", { class: "primary", type: "submit" }, t("Search"))), error,
  h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, [t("task"), t("host"), t("status"), t("exit"), t("started"), t("duration"), t("output"), t("reason")].map((x) => h("th", {}, x)))),
    body)), foot);
  status.addEventListener("change", () => load(0));

  let latest = 0;
  async function load(offset) {
    const mine = ++latest;
    const q = { view: "results", host: host.value, status: status.value, task: task.value, since: since.value, until: until.value };
    setQuery(q);
    error.textContent = "";
    let page;
    try {
      page = await api("results", { query: { host: q.host, status: q.status, task: q.task, since: timeParam(q.since), until: timeParam(q.until), limit: PAGE, offset } });
    } catch (err) { error.textContent = err.message; return; }
    if (mine !== latest) return; // a newer search answered first
    fill(body, page.items.length ? page.items.map((r) => {
      const detail = h("tr", { hidden: true }, h("td", { colspan: 8 }, resultOutput(r)));
      return [h("tr", { class: "clickable", "data-status": r.status, onclick: (e) => { if (!(e.target instanceof HTMLAnchorElement)) detail.hidden = !detail.hidden; } },
        h("td", { class: "mono" }, h("a", { href: `#/tasks/${r.task_id}` }, `#${r.task_id}`)),
        h("td", { class: "mono" }, r.host), h("td", {}, badge(r.status, st(r.status))),
        h("td", { class: "num" }, r.exit_code ?? ""), h("td", { class: "nowrap small" }, fmtTime(r.started_at)),
        h("td", { class: "num small" }, fmtDuration(r.duration)),
        h("td", { class: "small nowrap" }, fmtBytes(r.stdout_bytes + r.stderr_bytes), r.truncated ? [" ", badge("interrupted", t("cut"))] : null),
        h("td", { class: "small" }, r.reason)), detail];
    }) : h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("No results match."))));
    fill(foot, pager(offset, page.items.length, page.total, load, { size: PAGE }));
  }
  await load(0);
}
