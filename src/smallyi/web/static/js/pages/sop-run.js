// One SOP run, followed live: the steps by wave with their status, attempts, timings, tasks and results;
// the numbered events as they arrive; approve or reject a waiting step; cancel. The event stream resumes
// from the last sequence number seen after a lost connection, and a reload replays it from the start.
import { api, socket } from "../api.js";
import { badge, debounce, fill, fmtDuration, fmtTime, h, toast } from "../dom.js";
import { followEvents } from "../events.js";
import { st, t } from "../i18n.js";
import { can, FINAL, short, targetText } from "./shared.js";

/** Who may decide an approval, as the API will judge it: a reason why not, or "" when allowed. */
export function cannotDecide(session, approval, run) {
  const me = session.user.username;
  if (!can(session, "approvals.decide")) return t("Your role cannot decide approvals.");
  if (me === (approval.requested_by || run.started_by)) return t("You started this run: someone else decides.");
  if (approval.approvers && approval.approvers.length && !approval.approvers.includes(me)) {
    return t("Only {names} can decide.", { names: approval.approvers.join(", ") });
  }
  return "";
}

/** The approve / reject form of a pending approval; `after` runs when a decision was recorded. */
export function decisionForm(session, approval, run, after) {
  const why = cannotDecide(session, approval, run);
  const comment = h("input", { class: "grow", "data-comment": approval.id, placeholder: t("comment (optional)"), maxlength: 2000, disabled: Boolean(why) });
  async function decide(verb) {
    for (const b of buttons) b.disabled = true;
    try {
      await api(`sop-runs/${approval.run_id}/steps/${encodeURIComponent(approval.step_id)}/${verb}`, { method: "POST", body: { comment: comment.value } });
      toast(verb === "approve" ? t("Approved {step}.", { step: approval.step_id }) : t("Rejected {step}.", { step: approval.step_id }));
      if (after) after();
    } catch (err) { toast(err.message, true); for (const b of buttons) b.disabled = false; }
  }
  const buttons = [
    h("button", { class: "primary small", "data-approve": approval.step_id, disabled: Boolean(why), title: why || null, onclick: () => decide("approve") }, t("Approve")),
    h("button", { class: "danger small", "data-reject": approval.step_id, disabled: Boolean(why), title: why || null, onclick: () => decide("reject") }, t("Reject")),
  ];
  return h("div", { class: "decision" }, h("div", { class: "row" }, comment, buttons), why ? h("div", { class: "small muted" }, why) : null);
}

function eventText(e) {
  const d = e.data || {};
  switch (e.kind) {
    case "run.start": return `${t("started by")} ${d.started_by || ""}`;
    case "run.finish": return `${st(d.status)}${d.reason ? ` — ${d.reason}` : ""}`;
    case "step.start": return d.type || "";
    case "step.finish": return `${st(d.status)} ${fmtDuration(d.duration)}${d.reason ? ` — ${d.reason}` : ""}`;
    case "step.task": return t("task #{id} on {n} hosts", { id: d.task_id, n: d.hosts });
    case "step.waiting": return d.message || t("waiting for approval");
    case "step.retry": return `${t("attempt")} ${d.attempt}${d.reason ? ` — ${d.reason}` : ""}`;
    case "step.ticket": return `${d.ticket_id || ""} ${d.url || ""}`;
    case "step.child": return `${t("run")} #${d.run_id} ${d.status ? st(d.status) : ""}`;
    default: return Object.keys(d).length ? short(d, 160) : "";
  }
}

function resultView(step) {
  const r = step.result || {};
  const parts = [];
  if (r.hosts && typeof r.hosts === "object" && Object.keys(r.hosts).length) {
    parts.push(h("div", { class: "table-wrap step-hosts" }, h("table", {},
      h("thead", {}, h("tr", {}, [t("host"), t("status"), t("exit"), t("output")].map((x) => h("th", {}, x)))),
      h("tbody", {}, Object.entries(r.hosts).map(([name, x]) => h("tr", { "data-host": name },
        h("td", { class: "mono" }, name), h("td", {}, badge(x.status, st(x.status))), h("td", { class: "num" }, x.exit_code ?? ""),
        h("td", { class: "cmd", title: `${x.output || ""}${x.stderr ? `\n${x.stderr}` : ""}` }, (x.output || x.stderr || "").split("\n").slice(-1)[0])))))));
  }
  if (r.output) parts.push(h("div", { class: "small muted" }, t("output")), h("pre", { class: "out step-output" }, r.output));
  if (r.outputs && Object.keys(r.outputs).length) {
    parts.push(h("div", { class: "small muted" }, t("outputs")),
      h("ul", { class: "kv" }, Object.entries(r.outputs).map(([k, v]) => h("li", {}, h("span", { class: "mono" }, k), " = ", h("span", { class: "mono" }, short(v))))));
  }
  if (r.matched_hosts && r.matched_hosts.length) parts.push(h("p", { class: "small" }, `${t("matched hosts")}: `, h("span", { class: "mono" }, r.matched_hosts.join(", "))));
  if (r.result !== undefined && step.type === "if") parts.push(h("p", { class: "small" }, `${t("condition")}: ${String(r.result)}`));
  parts.push(h("details", {}, h("summary", { class: "small muted" }, t("result as JSON")), h("pre", { class: "out" }, JSON.stringify(r, null, 2))));
  return parts;
}

/** The live output of a step's latest task, `[host] line`, the last TAIL lines; `.close()` stops it. */
const TAIL = 300;
function taskTail(taskId) {
  const pre = h("pre", { class: "out step-live", "data-task": taskId });
  const lines = [];
  let frame = 0, stopped = false, lastSeq = 0;
  const ws = socket(`tasks/${taskId}/stream`, { after: 0 });
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type !== "events") return;
    for (const e of msg.events) {
      if (e.seq <= lastSeq) continue;
      lastSeq = e.seq;
      if (e.stream === "stdout" || e.stream === "stderr") lines.push(`[${e.host}] ${e.text}`);
      else if (e.stream === "done") lines.push(`[${e.host}] ${st(e.status)}${e.exit_code != null ? ` exit ${e.exit_code}` : ""}`);
    }
    if (lines.length > TAIL * 2) lines.splice(0, lines.length - TAIL);
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      pre.textContent = lines.slice(-TAIL).join("\n");
      pre.scrollTop = pre.scrollHeight;
    });
  };
  return { el: pre, taskId, close() { if (!stopped) { stopped = true; ws.close(); } } };
}

export async function render({ title, content, params, session }) {
  const id = Number(params[0]);
  let run = await api(`sop-runs/${id}`);
  content.classList.add("fill");
  const statusEl = h("span", { id: "run-status" });
  const conn = h("span", { class: "small muted", id: "run-conn" });
  title.append(h("h1", {}, t("SOP run #{id}", { id })), statusEl, conn);
  const cancelBtn = h("button", { class: "danger", id: "run-cancel", hidden: true, onclick: cancel }, t("Cancel"));
  const meta = h("div", { class: "run-meta", id: "run-meta" });
  const stepsBody = h("tbody", { id: "steps-body" });
  const eventsEl = h("div", { class: "events", id: "run-events", role: "log" });
  const approvalsEl = h("div", { id: "run-approvals" });
  content.append(
    h("div", { class: "card run-head" }, h("div", { class: "row" }, meta, h("span", { class: "grow" }), cancelBtn), approvalsEl),
    h("div", { class: "run-split" },
      h("div", { class: "pane" }, h("h2", {}, t("Steps")), h("div", { class: "table-wrap grow" }, h("table", { id: "steps-table" },
        h("thead", {}, h("tr", {}, [t("wave"), t("step"), t("type"), t("status"), t("attempts"), t("started"), t("duration"), t("tasks"), t("reason")].map((x) => h("th", {}, x)))),
        stepsBody))),
      h("div", { class: "pane" }, h("h2", {}, t("Events")), eventsEl)));

  const open = new Set();
  const tails = new Map(); // step id → the live output of its running task
  let pendingKey = null;
  let lastSeq = 0, stream = null, ended = false;

  function paintHead() {
    fill(statusEl, badge(run.status, st(run.status)));
    cancelBtn.hidden = FINAL.has(run.status) || !can(session, "sop.run");
    fill(meta,
      h("span", {}, h("span", { class: "muted" }, `${t("SOP")} `), run.sop
        ? h("a", { href: `#/sops/${encodeURIComponent(run.sop)}`, class: "mono" }, `${run.sop}${run.sop_version ? ` v${run.sop_version}` : ""}`)
        : h("span", { class: "faint" }, t("inline"))),
      h("span", { id: "run-started-by" }, h("span", { class: "muted" }, `${t("started by")} `), h("strong", {}, run.started_by), ` (${run.trigger})`),
      run.environment ? h("span", {}, h("span", { class: "muted" }, `${t("environment")} `), run.environment) : null,
      run.target ? h("span", {}, h("span", { class: "muted" }, `${t("target")} `), targetText(run.target)) : null,
      Object.keys(run.vars || {}).length ? h("span", { class: "mono small" }, Object.entries(run.vars).map(([k, v]) => `${k}=${short(v, 40)}`).join(" ")) : null,
      h("span", {}, h("span", { class: "muted" }, `${t("started")} `), fmtTime(run.started_at || run.created_at)),
      run.finished_at ? h("span", {}, h("span", { class: "muted" }, `${t("duration")} `), fmtDuration(run.duration)) : null,
      run.parent_run_id ? h("a", { href: `#/sop-runs/${run.parent_run_id}` }, t("called by run #{id}", { id: run.parent_run_id })) : null,
      run.reason ? h("span", { class: "error", id: "run-reason" }, run.reason) : null);
    const pending = (run.approvals || []).filter((a) => a.status === "pending");
    const key = pending.map((a) => a.id).join(",");
    if (key === pendingKey) return; // keep a comment being typed
    pendingKey = key;
    fill(approvalsEl, pending.map((a) => h("div", { class: "approval-box", "data-approval": a.step_id },
      h("div", { class: "row" }, badge("waiting", st("waiting")), h("strong", { class: "mono" }, a.step_id), h("span", {}, a.message),
        h("span", { class: "grow" }), h("span", { class: "small muted" }, `${t("expires")} ${fmtTime(a.expires_at)}`)),
      decisionForm(session, a, run, refresh))));
  }

  function elapsed(s) {
    if (s.duration != null) return fmtDuration(s.duration);
    if (s.status === "running" || s.status === "waiting") {
      const from = s.started_at ? new Date(s.started_at).getTime() : NaN;
      return Number.isNaN(from) ? "" : fmtDuration(Math.max(0, (Date.now() - from) / 1000));
    }
    return "";
  }

  function paintSteps() {
    const rows = [];
    for (const s of run.steps || []) {
      const approval = (run.approvals || []).find((a) => a.step_id === s.id);
      const detail = h("tr", { class: "step-detail", hidden: !open.has(s.id), "data-detail": s.id }, h("td", { colspan: 9 },
        approval && approval.status !== "pending" ? h("p", { class: "small" }, badge(approval.status, st(approval.status)), " ",
          t("by {who} at {when}", { who: approval.decided_by || "—", when: fmtTime(approval.decided_at) }), approval.comment ? ` — “${approval.comment}”` : "") : null,
        liveTail(s),
        s.result && Object.keys(s.result).length ? resultView(s) : tails.has(s.id) ? null : h("p", { class: "small muted" }, t("No result yet."))));
      rows.push(h("tr", { class: "clickable", "data-step": s.id, "data-status": s.status, onclick: (e) => {
        if (e.target instanceof HTMLAnchorElement) return;
        if (open.has(s.id)) open.delete(s.id); else open.add(s.id);
        detail.hidden = !open.has(s.id);
        if (!open.has(s.id)) stopTail(s.id); else if (!tails.has(s.id)) paintSteps();
      } },
      h("td", { class: "num" }, s.wave ? String(s.wave) : "—"),
      h("td", { class: "mono" }, s.id),
      h("td", { class: "small" }, s.type),
      h("td", {}, badge(s.status, st(s.status))),
      h("td", { class: "num" }, s.attempts ? String(s.attempts) : ""),
      h("td", { class: "small nowrap" }, s.started_at ? fmtTime(s.started_at).slice(11) : ""),
      h("td", { class: "num small", "data-elapsed": s.id }, elapsed(s)),
      h("td", { class: "nowrap" }, (s.task_ids || []).map((tid) => [h("a", { href: `#/tasks/${tid}`, class: "mono small" }, `#${tid}`), " "])),
      h("td", { class: "small ellipsis mw-260", title: s.reason || "" }, s.reason || "")), detail);
    }
    fill(stepsBody, rows);
  }

  /** While a host step runs and its row is open, its task's output streams under it. */
  function liveTail(s) {
    const tid = (s.task_ids || []).slice(-1)[0];
    const live = open.has(s.id) && s.status === "running" && tid;
    let tail = tails.get(s.id);
    if (tail && (!live || tail.taskId !== tid)) { stopTail(s.id); tail = null; }
    if (!live) return null;
    if (!tail) { tail = taskTail(tid); tails.set(s.id, tail); }
    return [h("div", { class: "small muted" }, t("live output of task #{id}", { id: tid })), tail.el];
  }
  function stopTail(sid) {
    const tail = tails.get(sid);
    if (tail) { tail.close(); tails.delete(sid); }
  }

  function addEvents(events) {
    const frag = document.createDocumentFragment();
    for (const e of events) {
      if (e.seq <= lastSeq) continue; // a resumed stream never doubles events
      lastSeq = e.seq;
      const step = e.step && (run.steps || []).find((s) => s.id === e.step);
      if (step) {
        if (e.kind === "step.start") Object.assign(step, { status: "running", started_at: e.at, duration: null });
        else if (e.kind === "step.waiting") step.status = "waiting";
        else if (e.kind === "step.finish") Object.assign(step, { status: e.data.status, duration: e.data.duration, reason: e.data.reason });
        else if (e.kind === "step.task" && !(step.task_ids || []).includes(e.data.task_id)) step.task_ids = [...(step.task_ids || []), e.data.task_id];
      }
      const cls = e.kind === "step.finish" || e.kind === "run.finish" ? ` s-${e.data.status}` : "";
      frag.append(h("div", { class: `ev${cls}`, "data-seq": e.seq, "data-kind": e.kind },
        h("span", { class: "faint" }, fmtTime(e.at).slice(11)), " ", h("span", { class: "k" }, e.kind), " ",
        e.step ? h("span", { class: "mono st" }, e.step) : null, " ", h("span", { class: "d" }, eventText(e))));
    }
    const atBottom = eventsEl.scrollHeight - eventsEl.scrollTop - eventsEl.clientHeight < 30;
    eventsEl.append(frag);
    if (atBottom) eventsEl.scrollTop = eventsEl.scrollHeight;
    paintSteps();
    refreshSoon();
  }

  let asked = 0;
  async function refresh() {
    const mine = ++asked;
    let fresh;
    try { fresh = await api(`sop-runs/${id}`); } catch { return; }
    if (mine !== asked) return; // a later request is out: its answer is newer than this one
    run = fresh;
    paintHead();
    paintSteps();
  }
  const refreshSoon = debounce(refresh, 300);

  function connect() {
    stream = followEvents(`sop-runs/${id}/stream`, {
      conn, after: () => lastSeq, isFinal: () => FINAL.has(run.status), onEvents: addEvents,
      onEnd: (msg) => {
        ended = true;
        run = { ...run, ...msg.run };
        paintHead();
        refresh();
      },
    });
  }

  async function cancel() {
    if (!window.confirm(t("Cancel run #{id}? Running commands are stopped.", { id }))) return;
    cancelBtn.disabled = true;
    try { const r = await api(`sop-runs/${id}/cancel`, { method: "POST" }); toast(t("Run #{id}: {what}", { id, what: r.result })); }
    catch (err) { toast(err.message, true); cancelBtn.disabled = false; }
  }

  // running steps' times move every second; approvals decided elsewhere show up within a few seconds
  const ticker = setInterval(() => {
    for (const s of run.steps || []) {
      if (s.status !== "running" && s.status !== "waiting") continue;
      const cell = stepsBody.querySelector(`[data-elapsed="${CSS.escape(s.id)}"]`);
      if (cell) cell.textContent = elapsed(s);
    }
  }, 1000);
  const poll = setInterval(() => { if (!ended && !document.hidden) refresh(); }, 5000);

  paintHead();
  paintSteps();
  connect();
  return () => {
    clearInterval(ticker);
    clearInterval(poll);
    stream.close();
    for (const sid of [...tails.keys()]) stopTail(sid);
  };
}
