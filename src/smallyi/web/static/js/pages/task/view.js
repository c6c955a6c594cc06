// The task page's DOM, drawn from its state: the header and counters, the host list, the stream of
// `[host]` lines, the identical-output groups and the archived results. Listeners that change state or
// call the API are the handlers' (task.js), passed in where a view makes rows; how it looks is app.css's.
import { badge, clear, fill, fmtBytes, fmtDuration, fmtTime, h } from "../../dom.js";
import { st, t } from "../../i18n.js";
import { FINAL, pager, resultOutput, targetText } from "../shared.js";
import { counts, hiddenLines, isFinal, RESULTS_PAGE, SHOW, visible } from "./state.js";

const HOST_ORDER = ["running", "pending", "failed", "timeout", "unreachable", "interrupted", "cancelled", "success"];

/** The page's fixed elements, appended to `title` and `content`; returned by name for the handlers. */
export function layout(title, content, id, task) {
  const v = {
    status: h("span", { id: "task-status" }),
    cancel: h("button", { class: "danger", id: "task-cancel" }, t("Cancel")),
    rerun: h("button", { id: "task-rerun" }, t("Run again")),
    conn: h("span", { class: "small muted", id: "stream-state" }),
    counters: h("div", { class: "counters", id: "task-counters" }),
    meta: h("div", { class: "small muted" }),
    stream: h("div", { class: "stream", id: "stream", role: "log", "aria-live": "off" }),
    cap: h("div", { class: "cap", id: "stream-cap", hidden: true }),
    filterLabel: h("span", { class: "small", id: "host-filter-label" }),
    showAll: h("button", { class: "small", id: "show-all", hidden: true }, t("Show all hosts")),
    follow: h("input", { type: "checkbox", checked: true, id: "follow" }),
    hostSearch: h("input", { type: "search", placeholder: t("filter hosts"), id: "host-search" }),
    hostList: h("div", { class: "hostlist", id: "host-list" }),
    hostItems: new Map(), // name → the host's row in hostList
    tabs: {},
  };
  v.panes = {
    stream: h("div", { class: "split" },
      h("div", { class: "pane host-pane" }, v.hostSearch, v.hostList),
      h("div", { class: "pane" },
        h("div", { class: "toolbar" }, v.filterLabel, v.showAll,
          h("span", { class: "grow" }), h("label", { class: "check small" }, v.follow, t("Follow"))),
        h("div", { class: "pane stream-box" }, v.cap, v.stream))),
    groups: h("div", { class: "pane scroll", id: "groups-pane" }),
    results: h("div", { class: "pane scroll", id: "results-pane" }),
  };
  const tabBar = h("div", { class: "tabs" }, Object.entries({ stream: t("Live output"), groups: t("Identical output"), results: t("Archived results") })
    .map(([key, label]) => (v.tabs[key] = h("button", { "data-tab": key }, label))));
  const head = h("div", { class: "task-head" },
    h("div", { class: "grow task-summary" },
      h("div", { class: "cmdline", id: "task-command" }, task.command),
      h("div", { class: "row mt-6" }, v.counters)),
    h("div", { class: "task-actions" }, h("div", { class: "row end" }, v.cancel, v.rerun), v.meta));
  title.append(h("h1", {}, t("Task #{id}", { id })), v.status, v.conn);
  content.append(head, tabBar, v.panes.stream, v.panes.groups, v.panes.results);
  return v;
}

export function showTab(v, key) {
  for (const [k, pane] of Object.entries(v.panes)) pane.hidden = k !== key;
  for (const [k, b] of Object.entries(v.tabs)) b.classList.toggle("active", k === key);
}

// -- header and counters -------------------------------------------------------------------------

export function paintHead(v, state) {
  const { task } = state;
  fill(v.status, badge(task.status, st(task.status)));
  v.cancel.hidden = isFinal(state);
  fill(v.meta,
    h("div", {}, targetText(task.target)),
    h("div", {}, `${t("by")} ${task.created_by} · ${fmtTime(task.created_at)}`),
    h("div", {}, `${t("timeout")} ${fmtDuration(task.timeout)} · ${t("concurrency")} ${task.concurrency}${task.duration != null ? ` · ${fmtDuration(task.duration)}` : ""}`),
    task.queue_position ? h("div", {}, t("queue position {n}", { n: task.queue_position })) : null,
    task.reason ? h("div", { class: "error" }, task.reason) : null);
}

export function paintCounters(v, state) {
  const c = counts(state);
  const total = state.task.host_count;
  const done = Object.entries(c).filter(([k]) => k !== "pending" && k !== "running").reduce((a, [, n]) => a + n, 0);
  fill(v.counters,
    h("span", { class: "counter s-closed", "data-count": "total" }, t("hosts"), h("b", {}, String(total))),
    h("span", { class: "counter s-closed", "data-count": "done" }, t("done"), h("b", {}, `${done}/${total}`)),
    HOST_ORDER.filter((s) => c[s]).map((s) => h("span", { class: `counter s-${s}`, "data-count": s }, st(s), h("b", {}, String(c[s])))));
}

// -- host list -----------------------------------------------------------------------------------

/** Draw one host's row (made on first sight): status, name, lines so far; hidden if the search misses it. */
export function paintHost(v, state, name, host) {
  let el = v.hostItems.get(name);
  if (!el) {
    el = h("div", { class: "item", "data-host": name });
    v.hostItems.set(name, el);
    v.hostList.append(el);
  }
  fill(el, badge(host.status, st(host.status)), h("span", { class: "n", title: name }, name),
    h("span", { class: "small faint" }, host.lines ? String(host.lines) : ""));
  el.classList.toggle("active", name === state.filterHost);
  const q = v.hostSearch.value.trim().toLowerCase();
  el.hidden = Boolean(q) && !name.toLowerCase().includes(q);
}

export function paintHosts(v, state) {
  for (const [name, host] of state.hosts) paintHost(v, state, name, host);
}

/** The host filter's marks: the chosen row, the label over the stream, "Show all hosts". */
export function paintFilter(v, state) {
  const name = state.filterHost;
  for (const [n, el] of v.hostItems) el.classList.toggle("active", n === name);
  v.filterLabel.textContent = name ? t("Only {host}", { host: name }) : t("All hosts, in the order lines arrived");
  v.showAll.hidden = !name;
}

// -- the stream ----------------------------------------------------------------------------------

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

function followEnd(v) {
  if (v.follow.checked) v.stream.scrollTop = v.stream.scrollHeight;
}

export function paintCap(v, state) {
  const hidden = hiddenLines(state, v.stream.childElementCount);
  v.cap.hidden = hidden <= 0;
  if (hidden > 0) {
    v.cap.textContent = t("{n} earlier lines are not shown here (the view keeps the last {show}); every host's archived output is under Archived results.", { n: hidden, show: SHOW });
  }
}

/** Redraw the stream from the kept lines (after the host filter changed). */
export function rebuildStream(v, state) {
  clear(v.stream);
  const frag = document.createDocumentFragment();
  for (const l of state.lines.filter((x) => visible(state, x)).slice(-SHOW)) frag.append(lineEl(l));
  v.stream.append(frag);
  paintCap(v, state);
  followEnd(v);
}

/** Add a batch of lines at the end of the stream, dropping the oldest past SHOW. */
export function appendLines(v, batch) {
  if (!batch.length) return;
  const frag = document.createDocumentFragment();
  for (const l of batch.slice(-SHOW)) frag.append(lineEl(l));
  if (batch.length >= SHOW) v.stream.replaceChildren(frag);
  else {
    v.stream.append(frag);
    const extra = v.stream.childElementCount - SHOW;
    if (extra > 0) {
      const old = document.createRange();
      old.setStartBefore(v.stream.firstElementChild);
      old.setEndAfter(v.stream.children[extra - 1]);
      old.deleteContents();
    }
  }
  followEnd(v);
}

// -- groups of identical output ------------------------------------------------------------------

/** The groups of hosts with the same output, as the API has them now; `showOutput(host, into)` fills a
 * card's output (done at once for the first three). */
export function paintGroups(v, task, showOutput) {
  const pane = v.panes.groups;
  clear(pane);
  if (!FINAL.has(task.status)) pane.append(h("p", { class: "info" }, t("Hosts are grouped as they finish; this is the state so far.")));
  const groups = task.groups || [];
  if (!groups.length) { pane.append(h("p", { class: "muted" }, t("No host has finished yet."))); return; }
  pane.append(h("p", { class: "muted" }, t("{n} distinct outputs over {hosts} hosts", { n: groups.length, hosts: task.host_count })));
  groups.slice(0, 50).forEach((g, i) => {
    const out = h("div");
    pane.append(h("div", { class: "group-card", "data-group": i },
      h("div", { class: "row" }, h("strong", {}, t("{n} hosts", { n: g.hosts.length })), badge(g.status, st(g.status)),
        h("span", { class: "mono small muted ellipsis grow", title: g.hosts.join(", ") }, g.hosts.slice(0, 30).join(", ") + (g.hosts.length > 30 ? ", …" : "")),
        h("button", { class: "small", onclick: () => showOutput(g.hosts[0], out) }, t("Show output"))),
      out));
    if (i < 3 && g.digest) showOutput(g.hosts[0], out);
  });
}

export function paintOutput(into, results) {
  fill(into, results.length ? resultOutput(results[0]) : h("p", { class: "muted" }, t("No result.")));
}

// -- archived results ----------------------------------------------------------------------------

/** One page of per-host results; a row opens its output below it; `load(offset)` turns the page. */
export function paintResults(v, page, offset, load) {
  const rows = page.items.map((r) => {
    const detail = h("tr", { hidden: true }, h("td", { colspan: 7 }, resultOutput(r)));
    const row = h("tr", { class: "clickable", "data-host": r.host, onclick: () => { detail.hidden = !detail.hidden; } },
      h("td", { class: "mono" }, r.host), h("td", {}, badge(r.status, st(r.status))), h("td", { class: "num" }, r.exit_code ?? ""),
      h("td", { class: "num" }, fmtDuration(r.duration)), h("td", { class: "num" }, fmtBytes(r.stdout_bytes + r.stderr_bytes)),
      h("td", {}, r.truncated ? badge("interrupted", t("cut")) : ""), h("td", { class: "small" }, r.reason));
    return [row, detail];
  });
  fill(v.panes.results, h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, [t("host"), t("status"), t("exit"), t("duration"), t("output"), "", t("reason")].map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "empty" }, t("No results."))))),
  ), pager(offset, page.items.length, page.total, load, { size: RESULTS_PAGE }));
}
