// GitOps: the repository's status, its recent commits (plan: per-host diffs without writing; sync;
// roll back to a commit), a drift check, the sync history and one sync with every host's files and
// diffs (polled every second while it runs). Everything from the repository is shown as text.
import { api } from "../api.js";
import { badge, fill, fmtTime, h, modal, toast } from "../dom.js";
import { st, t } from "../i18n.js";
import { can } from "./shared.js";

const RUNNING = ["queued", "running"];

/** Per-host results with each file's status, reason and diff. */
function hostsView(hosts, id) {
  if (!hosts || !hosts.length) return h("p", { class: "muted" }, t("No files."));
  return h("div", { id }, hosts.map((hr) => h("div", { class: "card mb-8", "data-host": hr.host, "data-status": hr.status },
    h("div", {}, h("strong", { class: "mono" }, hr.host), " ", badge(hr.status, st(hr.status))),
    hr.files.map((f) => h("div", { class: "gitops-file", "data-path": f.path, "data-status": f.status },
      h("div", { class: "small" }, h("span", { class: "mono" }, f.path), " ", badge(f.status, st(f.status)),
        f.template ? h("span", { class: "faint" }, ` ← ${f.template}`) : null,
        f.reason ? h("span", { class: "muted" }, ` · ${f.reason}`) : null),
      f.diff ? h("pre", { class: "diff mono small" }, f.diff) : null)))));
}

function countsText(counts) {
  const files = (counts && counts.files) || {};
  return Object.entries(files).map(([k, v]) => `${st(k)} ${v}`).join(" · ");
}

export async function render(ctx) {
  return ctx.mode === "sync" ? renderSync(ctx) : renderMain(ctx);
}

async function renderMain({ title, content, session, go }) {
  title.append(h("h1", {}, t("GitOps")));
  const writable = can(session, "gitops.sync");
  const status = h("div", { id: "gitops-status" });
  const commits = h("div", { id: "gitops-commits" });
  const syncs = h("tbody", { id: "gitops-syncs" });
  const drift = h("div", { id: "gitops-drift" });
  const error = h("p", { class: "error", id: "gitops-error" });
  content.append(status, error);

  const st0 = await api("gitops/status");
  if (!st0.enabled) {
    fill(status, h("p", { class: "muted", id: "gitops-off" }, t("GitOps is off: set gitops.repo (and gitops.branch) in the config; see docs/gitops.md.")));
    return null;
  }
  const last = st0.last_sync;
  fill(status, h("div", { class: "card" },
    h("div", {}, `${t("repository")}: `, h("span", { class: "mono", id: "gitops-repo" }, st0.repo)),
    h("div", {}, `${t("branch")}: `, h("span", { class: "mono", id: "gitops-branch" }, st0.branch)),
    h("div", { id: "gitops-last" }, `${t("last sync")}: `, last
      ? [h("a", { href: `#/gitops/syncs/${last.id}` }, `#${last.id}`), " ", badge(last.status, st(last.status)), " ",
        h("span", { class: "mono" }, last.short), " ", fmtTime(last.finished_at)]
      : t("none yet")),
    h("div", { class: "small muted" }, t("{f} files on {n} hosts are managed.", { f: st0.managed_files, n: st0.managed_hosts }))));

  content.append(
    h("h2", {}, t("Recent commits")), commits,
    h("h2", { class: "mt-16" }, t("Drift")),
    h("div", { class: "toolbar" }, writable ? h("button", { id: "gitops-drift-check", onclick: checkDrift }, t("Check drift now")) : null,
      st0.last_drift ? h("span", { class: "small muted" }, t("last check"), ": ", badge(st0.last_drift.status, st(st0.last_drift.status)), " ", fmtTime(st0.last_drift.finished_at)) : null),
    drift,
    h("h2", { class: "mt-16" }, t("Sync history")),
    h("div", { class: "table-wrap" }, h("table", { id: "gitops-syncs-table" },
      h("thead", {}, h("tr", {}, ["#", t("kind"), t("status"), t("commit"), t("message"), t("requested by"), t("started"), t("files")].map((x) => h("th", {}, x)))),
      syncs)));

  async function loadCommits() {
    try {
      const page = await api("gitops/commits", { query: { limit: 20 } });
      fill(commits, page.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "gitops-commits-table" },
        h("thead", {}, h("tr", {}, [t("commit"), t("message"), t("author"), t("date"), ""].map((x) => h("th", {}, x)))),
        h("tbody", {}, page.items.map((c, i) => h("tr", { "data-commit": c.sha },
          h("td", { class: "mono" }, c.short), h("td", { class: "commit-message" }, c.subject),
          h("td", { class: "small" }, c.author), h("td", { class: "small nowrap" }, fmtTime(c.date)),
          h("td", { class: "nowrap" },
            h("button", { class: "small", "data-plan": c.sha, onclick: () => plan(c) }, t("Plan")),
            writable ? (i === 0
              ? h("button", { class: "small primary", "data-sync": c.sha, onclick: () => start("sync", c) }, t("Sync"))
              : h("button", { class: "small danger", "data-rollback": c.sha, onclick: () => start("rollback", c) }, t("Roll back to this commit"))) : null))))))
        : h("p", { class: "muted" }, t("No commits.")));
    } catch (err) { error.textContent = err.message; }
  }

  async function loadSyncs() {
    const page = await api("gitops/syncs", { query: { limit: 50 } });
    fill(syncs, page.items.length ? page.items.map((s) => h("tr", { "data-sync-id": s.id, "data-status": s.status },
      h("td", {}, h("a", { href: `#/gitops/syncs/${s.id}`, class: "mono" }, `#${s.id}`)),
      h("td", {}, t(s.kind)), h("td", {}, badge(s.status, st(s.status))),
      h("td", { class: "mono small" }, s.kind === "drift" ? "" : s.short),
      h("td", { class: "small" }, (s.message || "").split("\n")[0]),
      h("td", { class: "small" }, s.requested_by), h("td", { class: "small nowrap" }, fmtTime(s.started_at)),
      h("td", { class: "small" }, countsText(s.counts))))
      : h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("No syncs yet."))));
  }

  async function plan(c) {
    const { body } = modal(t("Plan of {c}", { c: c.short }), { wide: true });
    fill(body, h("p", { class: "muted" }, t("Comparing with the hosts…")));
    try {
      const p = await api("gitops/plan", { method: "POST", body: { commit: c.sha } });
      fill(body, h("p", { id: "plan-counts" }, t("Nothing is written: this is what a sync would do."), " ", countsText(p.counts)),
        hostsView(p.hosts, "plan-hosts"));
    } catch (err) { fill(body, h("p", { class: "error" }, err.message)); }
  }

  async function start(kind, c) {
    const ask = kind === "sync" ? t("Sync commit {c} to every target host now?", { c: c.short })
      : t("Roll back to commit {c}? It is rendered again and written to every target host.", { c: c.short });
    if (!window.confirm(ask)) return;
    try {
      const r = await api(`gitops/${kind}`, { method: "POST", body: kind === "sync" ? { commit: c.sha } : { to: c.sha } });
      go(`#/gitops/syncs/${r.sync}`);
    } catch (err) { toast(err.message, true); }
  }

  async function checkDrift(e) {
    e.target.disabled = true;
    fill(drift, h("p", { class: "muted" }, t("Checking…")));
    try {
      const r = await api("gitops/drift", { method: "POST" });
      fill(drift, h("p", { id: "drift-result", "data-status": r.status }, badge(r.status, st(r.status)), " ",
        r.reason || t("Every managed file holds what the last sync left."), " ",
        h("a", { href: `#/gitops/syncs/${r.id}` }, `#${r.id}`)));
      await loadSyncs();
    } catch (err) { fill(drift, h("p", { class: "error" }, err.message)); }
    e.target.disabled = false;
  }

  await Promise.all([loadCommits(), loadSyncs()]);
  const timer = setInterval(() => { if (!document.hidden) loadSyncs().catch(() => {}); }, 10000);
  return () => clearInterval(timer);
}

async function renderSync({ title, content, params }) {
  const id = params[0];
  title.append(h("h1", {}, t("Sync #{id}", { id })));
  const head = h("div", { id: "sync-head" });
  const hosts = h("div", { id: "sync-hosts" });
  content.append(h("p", {}, h("a", { href: "#/gitops" }, t("← GitOps"))), head, h("h2", {}, t("Hosts")), hosts);
  let timer = null, stopped = false;
  async function load() {
    if (stopped) return;
    const s = await api(`gitops/syncs/${id}`);
    fill(head, h("div", { class: "card", "data-status": s.status, id: "sync-status" },
      h("div", {}, badge(s.status, st(s.status)), " ", t(s.kind), " · ", h("span", { class: "mono" }, s.short), " · ", s.branch),
      h("div", { class: "commit-message" }, s.message),
      h("div", { class: "small muted" }, `${s.author || ""} · ${t("requested by")} ${s.requested_by} · ${s.trigger} · ${fmtTime(s.started_at)}`,
        s.finished_at ? ` → ${fmtTime(s.finished_at)}` : ""),
      s.reason ? h("div", { class: "error", id: "sync-reason" }, s.reason) : null,
      h("div", { class: "small" }, countsText(s.counts))));
    fill(hosts, RUNNING.includes(s.status) ? h("p", { class: "muted" }, t("Running…")) : hostsView(s.hosts, "sync-host-list"));
    if (RUNNING.includes(s.status) && !stopped) timer = setTimeout(() => load().catch(() => {}), 1000);
  }
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}
