// One task, live or archived: the aggregated stream with [host] prefixes, a per-host view, counters
// that move as hosts finish, hosts grouped by identical output, the archived results, cancel and
// "run again". The stream resumes after a lost connection from the last sequence number it saw.
//
// This module holds the page's handlers: clicks, the event stream and the status poll change the state
// (task/state.js) and redraw the view (task/view.js).
import { api } from "../api.js";
import { toast } from "../dom.js";
import { followEvents } from "../events.js";
import { t } from "../i18n.js";
import { prepareRerun } from "./run.js";
import { addEvents, createState, end, isFinal, polled, RESULTS_PAGE, takePending } from "./task/state.js";
import * as view from "./task/view.js";

/** Stream redraws at most this far apart (ms), and the task's status polled this often (ms). */
const FLUSH_MS = 100;
const POLL_MS = 3000;

export async function render({ title, content, params, go }) {
  const id = Number(params[0]);
  const state = createState(await api(`tasks/${id}`));
  content.classList.add("fill");
  const v = view.layout(title, content, id, state.task);
  let stream = null;
  let frame = 0;
  let lastFlush = 0;

  // -- clicks ---------------------------------------------------------------------------------------
  v.cancel.addEventListener("click", cancel);
  v.rerun.addEventListener("click", () => { prepareRerun(state.task); go("#/run"); });
  v.showAll.addEventListener("click", () => setFilter(""));
  for (const [key, button] of Object.entries(v.tabs)) button.addEventListener("click", () => showTab(key));
  v.hostSearch.addEventListener("input", () => view.paintHosts(v, state));
  v.hostList.addEventListener("click", (e) => {
    const item = e.target instanceof Element ? e.target.closest(".item") : null;
    if (item) setFilter(state.filterHost === item.dataset.host ? "" : item.dataset.host);
  });
  v.stream.addEventListener("click", (e) => {
    const host = e.target instanceof HTMLElement && e.target.classList.contains("h") ? e.target.dataset.host : null;
    if (host) setFilter(host);
  });

  function showTab(key) {
    view.showTab(v, key);
    if (key === "groups") loadGroups();
    if (key === "results") loadResults(0);
  }

  function setFilter(name) {
    state.filterHost = name;
    view.paintFilter(v, state);
    view.rebuildStream(v, state);
  }

  async function cancel() {
    v.cancel.disabled = true;
    try {
      const r = await api(`tasks/${id}/cancel`, { method: "POST" });
      toast(t("Task #{id}: {what}", { id, what: r.result }));
    } catch (err) { toast(err.message, true); v.cancel.disabled = false; }
  }

  // -- the stream -----------------------------------------------------------------------------------
  // at most FLUSH_MS apart: a viewer catching up a big task gets thousands of lines a frame, and
  // redrawing the view for each of them was what limited it (a few thousand lines a second)
  function flush() {
    frame = 0;
    const now = performance.now();
    if (!state.ended && now - lastFlush < FLUSH_MS) { frame = requestAnimationFrame(flush); return; }
    lastFlush = now;
    view.appendLines(v, takePending(state));
    view.paintCap(v, state);
    view.paintCounters(v, state);
  }

  function scheduleFlush() {
    if (!frame) frame = requestAnimationFrame(flush);
  }

  function connect() {
    stream = followEvents(`tasks/${id}/stream`, {
      conn: v.conn, after: () => state.lastSeq, isFinal: () => isFinal(state),
      onEvents: (events) => {
        addEvents(state, events, (name, host) => view.paintHost(v, state, name, host));
        scheduleFlush();
      },
      onEnd: (msg) => {
        end(state, msg.task);
        view.paintHead(v, state);
        view.paintHosts(v, state);
        scheduleFlush();
        if (!v.panes.groups.hidden) loadGroups();
      },
    });
  }

  // polls the task's status while it runs (queue position, counts), independent of the stream
  const poll = setInterval(async () => {
    if (state.ended || document.hidden) return;
    try {
      const fresh = await api(`tasks/${id}`);
      if (polled(state, fresh)) view.paintHead(v, state);
    } catch { /* the stream says more */ }
  }, POLL_MS);

  // -- the other tabs -------------------------------------------------------------------------------
  async function loadGroups() {
    view.paintGroups(v, await api(`tasks/${id}`), showOutput);
  }

  async function showOutput(host, into) {
    const r = await api("results", { query: { task: id, host, limit: 1 } });
    view.paintOutput(into, r.items);
  }

  async function loadResults(offset) {
    const page = await api(`tasks/${id}/results`, { query: { limit: RESULTS_PAGE, offset } });
    view.paintResults(v, page, offset, loadResults);
  }

  showTab("stream");
  setFilter("");
  view.paintHead(v, state);
  view.paintCounters(v, state);
  connect();
  return () => {
    clearInterval(poll);
    if (frame) cancelAnimationFrame(frame);
    stream.close();
  };
}
