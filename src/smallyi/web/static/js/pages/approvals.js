// Approvals: SOP steps waiting for a person (approve or reject with a comment) and commands the policy
// held for a second person; decided ones with the same filter. The navigation shows how many are
// pending (badge), refreshed every 10 seconds.
import { api } from "../api.js";
import { badge, fill, fmtTime, h, toast } from "../dom.js";
import { st, t } from "../i18n.js";
import { can, targetText } from "./shared.js";
import { decisionForm } from "./sop-run.js";

const STATUSES = ["pending", "approved", "rejected", "expired", "cancelled"];
let pendingCount = 0;
let badgeTimer = null;

/** Paint the count on the navigation link (kept across re-renders of the shell). */
export function paintBadge() {
  const link = document.querySelector('nav a[data-nav="approvals"]');
  if (!link) return;
  let el = link.querySelector(".nav-count");
  if (!el) { el = h("span", { class: "nav-count", id: "approvals-count" }); link.append(el); }
  el.textContent = String(pendingCount);
  el.hidden = pendingCount === 0;
}

/** Fetch the pending count now and every 10 s (once per page load; stops quietly when logged out). */
export function watchBadge(session) {
  async function refresh() {
    if (!session.user || !can(session, "sop.read") || document.hidden) return;
    try {
      const [steps, commands] = await Promise.all([
        api("sop-approvals", { query: { status: "pending", limit: 500 } }),
        can(session, "tasks.read") ? api("approvals", { query: { status: "pending", limit: 500 } }) : { total: 0 }]);
      pendingCount = steps.total + commands.total;
    } catch { return; }
    paintBadge();
  }
  refresh();
  if (!badgeTimer) badgeTimer = setInterval(refresh, 10000);
  return refresh;
}
let refreshBadge = () => {};

export async function render({ title, content, query, setQuery, session }) {
  refreshBadge = watchBadge(session);
  title.append(h("h1", {}, t("Approvals")));
  const status = h("select", { id: "appr-status" }, h("option", { value: "" }, t("any status")),
    STATUSES.map((s) => h("option", { value: s, selected: s === (query.status ?? "pending") }, st(s))));
  const list = h("div", { id: "approvals-list" });
  const commands = h("div", { id: "command-approvals" });
  content.append(h("div", { class: "toolbar" }, status,
    can(session, "approvals.decide") ? h("span", { class: "small muted" }, t("You cannot decide runs you started; a step listing approvers can be decided only by them."))
      : h("span", { class: "small muted", id: "appr-readonly" }, t("Your role can see approvals but not decide them."))),
  h("h2", {}, t("SOP steps")), list,
  ...(can(session, "tasks.read") ? [h("h2", { class: "mt-16" }, t("Commands held by the policy")), commands] : []));
  status.addEventListener("change", () => load());

  async function load() {
    setQuery({ status: status.value || "any" });
    const page = await api("sop-approvals", { query: { status: status.value === "any" ? "" : status.value, limit: 200 } });
    const runs = {};
    await Promise.all([...new Set(page.items.map((a) => a.run_id))].slice(0, 50).map(async (rid) => {
      try { runs[rid] = await api(`sop-runs/${rid}`); } catch { /* shown without its run */ }
    }));
    fill(list, page.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "approvals-table" },
      h("thead", {}, h("tr", {}, [t("run"), t("step"), t("requested by"), t("approvers"), t("status"), t("decision")].map((x) => h("th", {}, x)))),
      h("tbody", { id: "approvals-body" }, page.items.map((a) => {
        const run = runs[a.run_id] || { started_by: a.requested_by };
        return h("tr", { "data-approval": `${a.run_id}/${a.step_id}`, "data-status": a.status },
          h("td", { class: "nowrap" }, h("a", { href: `#/sop-runs/${a.run_id}`, class: "mono" }, `#${a.run_id}`),
            run.sop ? h("div", { class: "mono small muted" }, run.sop) : null),
          h("td", {}, h("div", { class: "mono" }, a.step_id), h("div", { class: "small" }, a.message)),
          h("td", { class: "small nowrap" }, h("div", {}, a.requested_by, " · ", fmtTime(a.created_at)),
            a.status === "pending" ? h("div", { class: "faint" }, `${t("expires")} ${fmtTime(a.expires_at)}`) : null),
          h("td", { class: "small" }, a.approvers.length ? a.approvers.join(", ") : t("anyone allowed")),
          h("td", {}, badge(a.status === "pending" ? "waiting" : a.status, st(a.status))),
          h("td", { class: "decide" }, a.status === "pending" ? decisionForm(session, a, run, () => { load(); refreshBadge(); })
            : h("span", { class: "small" }, `${a.decided_by || "—"} ${fmtTime(a.decided_at)}`, a.comment ? h("div", { class: "muted" }, `“${a.comment}”`) : null)));
      })))) : h("p", { class: "muted", id: "approvals-empty" }, t("No approvals here.")));
  }
  async function loadCommands() {
    if (!can(session, "tasks.read")) return;
    const wanted = status.value === "cancelled" ? "none" : status.value;
    if (wanted === "none") { fill(commands, h("p", { class: "muted" }, t("No approvals here."))); return; }
    const page = await api("approvals", { query: { status: wanted, limit: 200 } });
    const me = session.user.username;
    fill(commands, page.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "command-approvals-table" },
      h("thead", {}, h("tr", {}, ["#", t("command"), t("target"), t("rule"), t("requested by"), t("status"), t("decision")].map((x) => h("th", {}, x)))),
      h("tbody", {}, page.items.map((a) => {
        const why = !can(session, "approvals.decide") ? t("Your role cannot decide approvals.")
          : a.requested_by === me || a.person === me ? t("You asked for it: someone else decides.") : "";
        const run = /^sop-run:(\d+)$/.exec(a.client || "");
        const decide = async (verb, buttons) => {
          buttons.forEach((b) => { b.disabled = true; });
          try {
            const r = await api(`approvals/${a.id}/${verb}`, { method: "POST" });
            toast(verb === "reject" ? t("Rejected.") : r.task_id ? t("Approved: task #{id} runs.", { id: r.task_id })
              : t("Approved: the SOP step goes on."));
            await loadCommands();
            refreshBadge();
          } catch (err) { toast(err.message, true); buttons.forEach((b) => { b.disabled = false; }); }
        };
        const buttons = [];
        buttons.push(h("button", { class: "primary small", "data-approve": a.id, disabled: Boolean(why), title: why || null, onclick: () => decide("approve", buttons) }, t("Approve")),
          h("button", { class: "danger small", "data-reject": a.id, disabled: Boolean(why), title: why || null, onclick: () => decide("reject", buttons) }, t("Reject")));
        return h("tr", { "data-command-approval": a.id, "data-status": a.status },
          h("td", { class: "mono" }, String(a.id)),
          h("td", { class: "cmd", title: a.command }, a.command,
            run ? h("div", { class: "small" }, h("a", { href: `#/sop-runs/${run[1]}`, "data-held-run": run[1] },
              t("held step of SOP run #{id}", { id: run[1] }))) : null),
          h("td", { class: "small" }, targetText(a.target)),
          h("td", { class: "small" }, a.rule),
          h("td", { class: "small nowrap" }, h("div", {}, a.requested_by, " · ", fmtTime(a.created_at)),
            a.status === "pending" ? h("div", { class: "faint" }, `${t("expires")} ${fmtTime(a.expires_at)}`) : null),
          h("td", {}, badge(a.status === "pending" ? "waiting" : a.status, st(a.status))),
          h("td", { class: "nowrap" }, a.status === "pending" ? [buttons, why ? h("div", { class: "small muted" }, why) : null]
            : h("span", { class: "small" }, `${a.decided_by || "—"} ${fmtTime(a.decided_at)}`,
              a.task_id ? [" · ", h("a", { href: `#/tasks/${a.task_id}` }, `${t("task")} #${a.task_id}`)] : null)));
      })))) : h("p", { class: "muted", id: "command-approvals-empty" }, t("No approvals here.")));
  }
  status.addEventListener("change", () => loadCommands());

  if (query.status === "any") status.value = "";
  await Promise.all([load(), loadCommands()]);
  const timer = setInterval(() => {
    if (document.hidden) return;
    if (!list.contains(document.activeElement)) load().catch(() => {});
    loadCommands().catch(() => {});
  }, 10000);
  return () => clearInterval(timer);
}
