// One task, live or archived: the aggregated stream with [host] prefixes, a per-host view, counters
// that move as hosts finish, hosts grouped by identical output, the archived results, cancel and
// "run again". The stream resumes after a lost connection from the last sequence number it saw.
import { api } from "../api.js";
import { badge, clear, fill, fmtBytes, fmtDuration, fmtTime, h, toast } from "../dom.js";
import { followEvents } from "../events.js";
import { st, t } from "../i18n.js";
import { prepareRerun } from "./run.js";

/** Lines kept in memory for the views, and lines shown at once: the DOM never grows past SHOW. */
export const KEEP = 20000;
export const SHOW = 5000;
const FLUSH_MS = 100;
const FINAL = new Set(["success", "failed", "cancelled", "interrupted"]);
const HOST_ORDER = ["running", "pending", "failed", "timeout", "unreachable", "interrupted", "cancelled", "success"];

export async function render({ title, content, params, go }) {
  const id = Number(params[0]);
  let task = await api(`tasks/${id}`);
  content.classList.add("fill");

  // -- state -------------------------------------------------------------------------------------
  const hosts = new Map(); // name → {status, exit_code, reason, duration, lines, el}
  let lines = []; // {seq, host, stream, text, status?}
  let evicted = 0;
  let lastSeq = 0;
  let ended = false;
  let stream = null;
  let filterHost = "";
  let pendingDom = [];
  let frame = 0;
  let lastFlush = 0;

  // -- layout ------------------------------------------------------------------------------------
  const statusEl = h("span", { id: "task-status" });
  const cancelBtn = h("button", { class: "danger", id: "task-cancel", onclick: cancel }, t("Cancel"));
  const rerunBtn = h("button", { id: "task-rerun", onclick: () => { prepareRerun(task); go("#/run"); } }, t("Run again"));
  const conn = h("span", { class: "small muted", id: "stream-state" });
  title.append(h("h1", {}, t("Task #{id}", { id })), statusEl, conn);
  const counters = h("div", { class: "counters", id: "task-counters" });
  const meta = h("div", { class: "small muted" });
  const head = h("div", { class: "task-head" },
    h("div", { class: "grow", style: "min-width:0" },
      h("div", { class: "cmdline", id: "task-command" }, task.command),
      h("div", { class: "row", style: "margin-top:6px" }, counters)),
    h("div", { style: "text-align:right" }, h("div", { class: "row end" }, cancelBtn, rerunBtn), meta));

  const streamEl = h("div", { class: "stream", id: "stream", role: "log", "aria-live": "off" });
  const capNote = h("div", { class: "cap", id: "stream-cap", hidden: true });
  const hostFilterLabel = h("span", { class: "small", id: "host-filter-label" });
  const follow = h("input", { type: "checkbox", checked: true, id: "follow" });
  const hostSearch = h("input", { type: "search", placeholder: t("filter hosts"), style: "width:100%", id: "host-search" });
  const hostList = h("div", { class: "hostlist", id: "host-list" });
  const streamPane = h("div", { class: "pane" },
    h("div", { class: "toolbar" }, hostFilterLabel,
      h("button", { class: "small", id: "show-all", hidden: true, onclick: () => setFilter("") }, t("Show all hosts")),
      h("span", { class: "grow" }), h("label", { class: "check small" }, follow, t("Follow"))),
    h("div", { class: "pane", style: "background:#0d1117;border-radius:6px" }, capNote, streamEl));
  const split = h("div", { class: "split" },
    h("div", { class: "pane", style: "gap:6px" }, hostSearch, hostList), streamPane);
  const groupsPane = h("div", { class: "pane", style: "overflow:auto", id: "groups-pane" });
  const resultsPane = h("div", { class: "pane", style: "overflow:auto", id: "results-pane" });
  const panes = { stream: split, groups: groupsPane, results: resultsPane };
  const tabButtons = {};
  const tabs = h("div", { class: "tabs" }, Object.entries({ stream: t("Live output"), groups: t("Identical output"), results: t("Archived results") })
    .map(([key, label]) => (tabButtons[key] = h("button", { "data-tab": key, onclick: () => showTab(key) }, label))));
  content.append(head, tabs, split, groupsPane, resultsPane);
  showTab("stream");

  function showTab(key) {
    for (const [k, pane] of Object.entries(panes)) pane.hidden = k !== key;
    for (const [k, b] of Object.entries(tabButtons)) b.classList.toggle("active", k === key);
    if (key === "groups") loadGroups();
    if (key === "results") loadResults(0);
  }

  // -- header and counters -----------------------------------------------------------------------
  function renderHead() {
    fill(statusEl, badge(task.status, st(task.status)));
    cancelBtn.hidden = FINAL.has(task.status);
    const target = task.target || {};
    const parts = [];
    if (target.group) parts.push(`${t("group")} ${target.group}`);
    if (target.hosts && target.hosts.length) parts.push(`${t("hosts")} ${target.hosts.join(",")}`);
    if (target.labels && Object.keys(target.labels).length) parts.push(Object.entries(target.labels).map(([k, v]) => `${k}=${v}`).join(","));
    fill(meta, 
      h("div", {}, parts.join(" · ")),
      h("div", {}, `${t("by")} ${task.created_by} · ${fmtTime(task.created_at)}`),
      h("div", {}, `${t("timeout")} ${fmtDuration(task.timeout)} · ${t("concurrency")} ${task.concurrency}${task.duration != null ? ` · ${fmtDuration(task.duration)}` : ""}`),
      task.queue_position ? h("div", {}, t("queue position {n}", { n: task.queue_position })) : null,
      task.reason ? h("div", { class: "error" }, task.reason) : null);
  }

  function counts() {
    const c = {};
    for (const x of hosts.values()) c[x.status] = (c[x.status] || 0) + 1;
    const known = hosts.size;
    if (task.host_count > known) c.pending = (c.pending || 0) + task.host_count - known;
    if (ended && FINAL.has(task.status) && task.counts && Object.keys(task.counts).length) {
      // the archive is the truth once the task is over (hosts cancelled while queued have no events)
      return { ...task.counts };
    }
    return c;
  }

  function renderCounters() {
    const c = counts();
    const done = Object.entries(c).filter(([k]) => k !== "pending" && k !== "running").reduce((a, [, v]) => a + v, 0);
    fill(counters, 
      h("span", { class: "counter s-closed", "data-count": "total" }, t("hosts"), h("b", {}, String(task.host_count))),
      h("span", { class: "counter s-closed", "data-count": "done" }, t("done"), h("b", {}, `${done}/${task.host_count}`)),
      HOST_ORDER.filter((s) => c[s]).map((s) => h("span", { class: `counter s-${s}`, "data-count": s }, st(s), h("b", {}, String(c[s])))));
  }

  // -- host list ---------------------------------------------------------------------------------
  function hostEntry(name) {
    let x = hosts.get(name);
    if (!x) {
      x = { status: "running", exit_code: null, reason: "", duration: null, lines: 0, el: null };
      hosts.set(name, x);
      x.el = h("div", { class: "item", "data-host": name, onclick: () => setFilter(filterHost === name ? "" : name) });
      hostList.append(x.el);
      paintHost(name, x);
    }
    return x;
  }
  function paintHost(name, x) {
    fill(x.el, badge(x.status, st(x.status)), h("span", { class: "n", title: name }, name),
      h("span", { class: "small faint" }, x.lines ? String(x.lines) : ""));
    x.el.classList.toggle("active", name === filterHost);
    const q = hostSearch.value.trim().toLowerCase();
    x.el.hidden = Boolean(q) && !name.toLowerCase().includes(q);
  }
  hostSearch.addEventListener("input", () => { for (const [n, x] of hosts) paintHost(n, x); });

  function setFilter(name) {
    filterHost = name;
    for (const [n, x] of hosts) x.el.classList.toggle("active", n === name);
    hostFilterLabel.textContent = name ? t("Only {host}", { host: name }) : t("All hosts, in the order lines arrived");
    document.getElementById("show-all").hidden = !name;
    rebuild();
  }

  // -- the stream --------------------------------------------------------------------------------
  function lineEl(l) {
    if (l.stream === "done") {
      const why = l.reason && l.reason !== `exit status ${l.exit_code}` ? ` — ${l.reason}` : "";
      const exit = l.exit_code != null ? ` exit ${l.exit_code}` : "";
      return h("div", { class: `ln sys s-${l.status}` }, `[${l.host}] ${st(l.status)}${exit} ${fmtDuration(l.duration)}${why}`);
    }
    if (l.stream === "cut") {
      return h("div", { class: "ln sys" }, `[${l.host}] … ${t("{lines} lines ({bytes}) of {of} not archived", { lines: l.lines, bytes: fmtBytes(l.bytes), of: l.of })}`);
    }
    return h("div", { class: `ln${l.stream === "stderr" ? " err" : ""}`, "data-seq": l.seq },
      h("span", { class: "h", "data-host": l.host }, `[${l.host}]`), " ", h("span", { class: "t" }, l.text));
  }
  streamEl.addEventListener("click", (e) => {
    const host = e.target instanceof HTMLElement && e.target.classList.contains("h") ? e.target.dataset.host : null;
    if (host) setFilter(host);
  });

  function visible(l) { return !filterHost || l.host === filterHost; }

  function updateCap() {
    const shown = streamEl.childElementCount;
    const matching = filterHost ? lines.filter(visible).length : lines.length;
    const hidden = matching - shown + (filterHost ? 0 : evicted);
    capNote.hidden = hidden <= 0;
    if (hidden > 0) {
      capNote.textContent = t("{n} earlier lines are not shown here (the view keeps the last {show}); every host's archived output is under Archived results.", { n: hidden, show: SHOW });
    }
  }

  function rebuild() {
    clear(streamEl);
    const chosen = lines.filter(visible).slice(-SHOW);
    const frag = document.createDocumentFragment();
    for (const l of chosen) frag.append(lineEl(l));
    streamEl.append(frag);
    updateCap();
    if (follow.checked) streamEl.scrollTop = streamEl.scrollHeight;
  }

  // at most FLUSH_MS apart: a viewer catching up a big task gets thousands of lines a frame, and
  // redrawing the view for each of them was what limited it (a few thousand lines a second)
  function flush() {
    frame = 0;
    const now = performance.now();
    if (!ended && now - lastFlush < FLUSH_MS) { frame = requestAnimationFrame(flush); return; }
    lastFlush = now;
    const batch = pendingDom.filter(visible);
    pendingDom = [];
    if (batch.length) {
      const frag = document.createDocumentFragment();
      for (const l of batch.slice(-SHOW)) frag.append(lineEl(l));
      if (batch.length >= SHOW) streamEl.replaceChildren(frag);
      else {
        streamEl.append(frag);
        const extra = streamEl.childElementCount - SHOW;
        if (extra > 0) {
          const old = document.createRange();
          old.setStartBefore(streamEl.firstElementChild);
          old.setEndAfter(streamEl.children[extra - 1]);
          old.deleteContents();
        }
      }
      if (follow.checked) streamEl.scrollTop = streamEl.scrollHeight;
    }
    updateCap();
    renderCounters();
  }

  function onEvents(events) {
    for (const e of events) {
      if (e.seq <= lastSeq) continue; // already seen (a resumed stream never doubles lines)
      lastSeq = e.seq;
      const x = hostEntry(e.host);
      if (e.stream === "start") { if (x.status === "pending") x.status = "running"; continue; }
      if (e.stream === "done") {
        Object.assign(x, { status: e.status, exit_code: e.exit_code, reason: e.reason || "", duration: e.duration });
        paintHost(e.host, x);
      } else if (e.stream === "stdout" || e.stream === "stderr") {
        x.lines += 1;
        if (x.lines % 50 === 1) paintHost(e.host, x);
      }
      lines.push(e);
      pendingDom.push(e);
    }
    if (lines.length > KEEP * 1.1) {
      const drop = lines.length - KEEP;
      evicted += drop;
      lines = lines.slice(drop);
    }
    if (pendingDom.length > SHOW * 2) pendingDom = pendingDom.slice(-SHOW * 2);
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function connect() {
    stream = followEvents(`tasks/${id}/stream`, {
      conn, after: () => lastSeq, isFinal: () => FINAL.has(task.status), onEvents,
      onEnd: (msg) => {
        ended = true;
        task = { ...task, ...msg.task };
        renderHead();
        for (const [n, x] of hosts) paintHost(n, x);
        if (!frame) frame = requestAnimationFrame(flush);
        if (!groupsPane.hidden) loadGroups();
      },
    });
  }

  // polls the task's status while it runs (queue position, counts), independent of the stream
  const poll = setInterval(async () => {
    if (ended || document.hidden) return;
    try {
      const fresh = await api(`tasks/${id}`);
      // a reply sent before the stream's end can arrive after it: applied then, it would show the
      // finished task as running again, and nothing would correct it (polling stops at the end)
      if (!ended) { task = { ...task, ...fresh }; renderHead(); }
    } catch { /* the stream says more */ }
  }, 3000);

  async function cancel() {
    cancelBtn.disabled = true;
    try {
      const r = await api(`tasks/${id}/cancel`, { method: "POST" });
      toast(t("Task #{id}: {what}", { id, what: r.result }));
    } catch (err) { toast(err.message, true); cancelBtn.disabled = false; }
  }

  // -- groups of identical output ----------------------------------------------------------------
  async function loadGroups() {
    const fresh = await api(`tasks/${id}`);
    clear(groupsPane);
    if (!FINAL.has(fresh.status)) groupsPane.append(h("p", { class: "info" }, t("Hosts are grouped as they finish; this is the state so far.")));
    const groups = fresh.groups || [];
    if (!groups.length) { groupsPane.append(h("p", { class: "muted" }, t("No host has finished yet."))); return; }
    groupsPane.append(h("p", { class: "muted" }, t("{n} distinct outputs over {hosts} hosts", { n: groups.length, hosts: fresh.host_count })));
    groups.slice(0, 50).forEach((g, i) => {
      const out = h("div");
      const card = h("div", { class: "group-card", "data-group": i },
        h("div", { class: "row" }, h("strong", {}, t("{n} hosts", { n: g.hosts.length })), badge(g.status, st(g.status)),
          h("span", { class: "mono small muted ellipsis grow", title: g.hosts.join(", ") }, g.hosts.slice(0, 30).join(", ") + (g.hosts.length > 30 ? ", …" : "")),
          h("button", { class: "small", onclick: () => showOutput(g.hosts[0], out) }, t("Show output"))),
        out);
      groupsPane.append(card);
      if (i < 3 && g.digest) showOutput(g.hosts[0], out);
    });
  }

  async function showOutput(host, into) {
    const r = await api("results", { query: { task: id, host, limit: 1 } });
    fill(into, r.items.length ? resultOutput(r.items[0]) : h("p", { class: "muted" }, t("No result.")));
  }

  // -- archived results --------------------------------------------------------------------------
  async function loadResults(offset) {
    const page = await api(`tasks/${id}/results`, { query: { limit: 50, offset } });
    clear(resultsPane);
    const rows = page.items.map((r) => {
      const detail = h("tr", { hidden: true }, h("td", { colspan: 7 }, resultOutput(r)));
      const row = h("tr", { class: "clickable", "data-host": r.host, onclick: () => { detail.hidden = !detail.hidden; } },
        h("td", { class: "mono" }, r.host), h("td", {}, badge(r.status, st(r.status))), h("td", { class: "num" }, r.exit_code ?? ""),
        h("td", { class: "num" }, fmtDuration(r.duration)), h("td", { class: "num" }, fmtBytes(r.stdout_bytes + r.stderr_bytes)),
        h("td", {}, r.truncated ? badge("interrupted", t("cut")) : ""), h("td", { class: "small" }, r.reason));
      return [row, detail];
    });
    resultsPane.append(h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, [t("host"), t("status"), t("exit"), t("duration"), t("output"), "", t("reason")].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "empty" }, t("No results."))))),
    ), h("div", { class: "pager" },
      h("button", { class: "small", disabled: offset === 0, onclick: () => loadResults(Math.max(0, offset - 50)) }, t("Previous")),
      h("span", {}, t("{from}–{to} of {total}", { from: page.total ? offset + 1 : 0, to: offset + page.items.length, total: page.total })),
      h("button", { class: "small", disabled: offset + 50 >= page.total, onclick: () => loadResults(offset + 50) }, t("Next"))));
  }

  setFilter("");
  renderHead();
  renderCounters();
  connect();
  return () => {
    clearInterval(poll);
    if (frame) cancelAnimationFrame(frame);
    stream.close();
  };
}

/** A result's archived stdout and stderr, with the notice when the middle was cut. */
export function resultOutput(r) {
  const notice = r.truncated ? h("p", { class: "notice" }, t("Output was truncated in the archive: {out} of stdout and {err} of stderr were not kept (the middle, head and tail kept, and the ends of lines over the line limit).",
    { out: fmtBytes(r.stdout_cut), err: fmtBytes(r.stderr_cut) })) : null;
  return h("div", { class: "result-output" }, notice,
    r.reason ? h("p", { class: "small muted" }, r.reason) : null,
    h("div", { class: "small muted" }, `stdout · ${fmtBytes(r.stdout_bytes)}`),
    h("pre", { class: "out" }, r.stdout || "—"),
    r.stderr ? [h("div", { class: "small muted" }, `stderr · ${fmtBytes(r.stderr_bytes)}`), h("pre", { class: "out err" }, r.stderr)] : null);
}
