// Dashboard: hosts by their latest status, running and queued tasks, recent failures. Refreshes itself.
import { api } from "../api.js";
import { badge, fill, fmtDuration, fmtTime, h } from "../dom.js";
import { st, t } from "../i18n.js";

const ORDER = ["success", "failed", "timeout", "unreachable", "cancelled", "interrupted", "never"];

function taskItem(task, extra) {
  return h("li", {},
    h("a", { href: `#/tasks/${task.id}`, class: "mono" }, `#${task.id}`),
    badge(task.status, st(task.status)),
    h("span", { class: "cmd", title: task.command }, task.command),
    extra,
    h("span", { class: "faint small nowrap" }, fmtTime(task.created_at)));
}

function progress(task) {
  const done = Object.values(task.counts || {}).reduce((a, b) => a + b, 0);
  return h("span", { class: "small muted nowrap" }, `${done}/${task.host_count}`);
}

export async function render({ title, content }) {
  title.append(h("h1", {}, t("Dashboard")));
  const hostsCard = h("div", { class: "card", id: "dash-hosts" });
  const running = h("div", { class: "card", id: "dash-running" });
  const failures = h("div", { class: "card", id: "dash-failures" });
  const failedHosts = h("div", { class: "card", id: "dash-failed-results" });
  content.append(h("div", { class: "grid cols-2" }, hostsCard, running), h("div", { class: "grid cols-2 mt-12" }, failures, failedHosts));

  async function refresh() {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const [overview, run, queued, failed, failedResults] = await Promise.all([
      api("overview/hosts"),
      api("tasks", { query: { status: "running", limit: 20 } }),
      api("tasks", { query: { status: "queued", limit: 20 } }),
      api("tasks", { query: { status: "failed", since, limit: 10 } }),
      api("results", { query: { status: "failed", since, limit: 10 } }),
    ]);
    const enabled = overview.total - overview.disabled;
    fill(hostsCard, 
      h("h2", {}, t("Hosts by latest result")),
      h("div", { class: "row" },
        h("div", { class: "stat" }, h("span", { class: "value", id: "dash-host-total" }, String(overview.total)), h("span", { class: "label" }, t("hosts"))),
        overview.disabled ? h("span", { class: "muted small" }, t("{n} disabled", { n: overview.disabled })) : null),
      h("div", { class: "bar" }, ORDER.filter((s) => overview.by_status[s]).map((s) =>
        h("span", { class: `b-${s}`, title: `${st(s)}: ${overview.by_status[s]}`, style: `width:${(100 * overview.by_status[s]) / Math.max(enabled, 1)}%` }))),
      h("div", { class: "legend" }, ORDER.filter((s) => overview.by_status[s]).map((s) =>
        h("a", { href: `#/hosts?status=${s}`, "data-status": s }, badge(s, st(s)), h("b", {}, String(overview.by_status[s]))))),
    );
    fill(running, 
      h("h2", {}, t("Running and queued tasks")),
      run.items.length + queued.items.length === 0 ? h("p", { class: "muted" }, t("Nothing is running.")) : null,
      h("ul", { class: "list" },
        run.items.map((x) => taskItem(x, progress(x))),
        queued.items.map((x) => taskItem(x, h("span", { class: "small muted nowrap" }, t("queue position {n}", { n: x.queue_position ?? "?" }))))),
    );
    fill(failures, 
      h("h2", {}, t("Failed tasks, last 24 hours")),
      failed.items.length === 0 ? h("p", { class: "muted" }, t("No failures.")) : null,
      h("ul", { class: "list" }, failed.items.map((x) => taskItem(x, h("span", { class: "small nowrap" },
        Object.entries(x.counts || {}).filter(([k]) => k !== "success").map(([k, v]) => `${st(k)} ${v}`).join(", "))))),
      failed.total > failed.items.length ? h("a", { href: "#/history?status=failed" }, t("All {n} failed tasks", { n: failed.total })) : null,
    );
    fill(failedHosts, 
      h("h2", {}, t("Hosts that failed, last 24 hours")),
      failedResults.items.length === 0 ? h("p", { class: "muted" }, t("No failures.")) : null,
      h("ul", { class: "list" }, failedResults.items.map((r) => h("li", {},
        h("span", { class: "mono" }, r.host), badge(r.status, st(r.status)),
        h("span", { class: "cmd muted", title: r.reason }, r.reason),
        h("a", { href: `#/tasks/${r.task_id}`, class: "mono small" }, `#${r.task_id}`),
        h("span", { class: "faint small nowrap" }, fmtDuration(r.duration))))),
    );
  }
  await refresh();
  const timer = setInterval(() => { if (!document.hidden) refresh().catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}
