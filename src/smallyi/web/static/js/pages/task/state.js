// The task page's state: the task as last heard of, its hosts, the lines kept for the views and the
// lines not drawn yet. No DOM here: the view draws from it, the handlers change it.
import { FINAL } from "../shared.js";

/** Lines kept in memory for the views, and lines shown at once: the DOM never grows past SHOW. */
export const KEEP = 20000;
export const SHOW = 5000;
/** Archived results a page. */
export const RESULTS_PAGE = 50;

/** A host's line count is redrawn on its first line and every this many after (not on each line). */
const REPAINT_EVERY = 50;

export function createState(task) {
  return {
    task,
    hosts: new Map(), // name → {status, exit_code, reason, duration, lines}
    lines: [], // {seq, host, stream, text, status?}, the last KEEP or so
    evicted: 0, // lines dropped from `lines`
    lastSeq: 0, // the stream resumes after it
    ended: false, // the stream said the task is over
    filterHost: "", // "" is every host
    pending: [], // lines the view has not drawn yet
  };
}

export function isFinal(state) {
  return FINAL.has(state.task.status);
}

/** Whether a line belongs in the stream view under the current host filter. */
export function visible(state, line) {
  return !state.filterHost || line.host === state.filterHost;
}

/**
 * Take a batch of stream events. `paint(name, host)` is called where the host list needs redrawing:
 * when a host first appears, when it ends, and on every REPAINT_EVERY-th line it prints.
 */
export function addEvents(state, events, paint) {
  for (const e of events) {
    if (e.seq <= state.lastSeq) continue; // already seen (a resumed stream never doubles lines)
    state.lastSeq = e.seq;
    const x = hostEntry(state, e.host, paint);
    if (e.stream === "start") { if (x.status === "pending") x.status = "running"; continue; }
    if (e.stream === "done") {
      Object.assign(x, { status: e.status, exit_code: e.exit_code, reason: e.reason || "", duration: e.duration });
      paint(e.host, x);
    } else if (e.stream === "stdout" || e.stream === "stderr") {
      x.lines += 1;
      if (x.lines % REPAINT_EVERY === 1) paint(e.host, x);
    }
    state.lines.push(e);
    state.pending.push(e);
  }
  if (state.lines.length > KEEP * 1.1) {
    const drop = state.lines.length - KEEP;
    state.evicted += drop;
    state.lines = state.lines.slice(drop);
  }
  if (state.pending.length > SHOW * 2) state.pending = state.pending.slice(-SHOW * 2);
}

function hostEntry(state, name, paint) {
  let x = state.hosts.get(name);
  if (!x) {
    x = { status: "running", exit_code: null, reason: "", duration: null, lines: 0 };
    state.hosts.set(name, x);
    paint(name, x);
  }
  return x;
}

/** The lines waiting to be drawn that the filter lets through; the queue is emptied. */
export function takePending(state) {
  const batch = state.pending.filter((l) => visible(state, l));
  state.pending = [];
  return batch;
}

/** Hosts per status. Once the task is over the archive's counts are the truth (hosts cancelled while
 * queued have no events); before that, hosts not heard from yet count as pending. */
export function counts(state) {
  const { task } = state;
  const c = {};
  for (const x of state.hosts.values()) c[x.status] = (c[x.status] || 0) + 1;
  const known = state.hosts.size;
  if (task.host_count > known) c.pending = (c.pending || 0) + task.host_count - known;
  if (state.ended && isFinal(state) && task.counts && Object.keys(task.counts).length) return { ...task.counts };
  return c;
}

/** How many lines the stream view leaves out when it shows `shown` of them. */
export function hiddenLines(state, shown) {
  const matching = state.filterHost ? state.lines.filter((l) => visible(state, l)).length : state.lines.length;
  return matching - shown + (state.filterHost ? 0 : state.evicted);
}

/** The stream's end: the task as it finished. */
export function end(state, task) {
  state.ended = true;
  state.task = { ...state.task, ...task };
}

/** A polled status: applied only while the stream has not ended. A reply sent before the end can
 * arrive after it; applied then, it would show the finished task as running again, and nothing
 * would correct it (polling stops at the end). Whether it was applied. */
export function polled(state, task) {
  if (state.ended) return false;
  state.task = { ...state.task, ...task };
  return true;
}
