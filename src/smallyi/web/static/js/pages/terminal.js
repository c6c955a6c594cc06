// Web terminal: pick a host and get a shell (xterm.js over a WebSocket to an SSH PTY, or a PTY on the
// server for host local), with resize,
// copy/paste and an idle timeout; every session is recorded (asciicast v2) and can be replayed here.
import { FitAddon } from "../../vendor/xterm/addon-fit.mjs";
import { Terminal } from "../../vendor/xterm/xterm.mjs";
import { api, apiText, socket } from "../api.js";
import { badge, fill, fmtBytes, fmtDuration, fmtTime, h, toast } from "../dom.js";
import { t } from "../i18n.js";

const THEME = { background: "#0d1117", foreground: "#e6edf3", cursor: "#58a6ff", selectionBackground: "#264f78" };
const FONT = '"DejaVu Sans Mono", ui-monospace, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace';

export async function render(ctx) {
  if (ctx.mode === "open") return openShell(ctx, ctx.params[0]);
  if (ctx.mode === "replay") return replay(ctx, Number(ctx.params[0]));
  return sessions(ctx);
}

async function sessions({ title, content, query, setQuery, go }) {
  title.append(h("h1", {}, t("Terminal")));
  const hostInput = h("input", { id: "term-host", list: "term-hosts", placeholder: t("host name"), required: true, size: 24 });
  const options = h("datalist", { id: "term-hosts" });
  hostInput.addEventListener("input", async () => {
    const r = await api("hosts", { query: { search: hostInput.value, limit: 20 } }).catch(() => ({ items: [] }));
    fill(options, r.items.filter((x) => x.connector === "ssh" || x.connector === "local").map((x) => h("option", { value: x.name }, x.address)));
  });
  content.append(h("form", { class: "card toolbar", id: "term-open", onsubmit: (e) => { e.preventDefault(); if (hostInput.value) go(`#/terminal/host/${encodeURIComponent(hostInput.value.trim())}`); } },
    h("strong", {}, t("Open a shell on")), hostInput, options, h("button", { class: "primary", type: "submit" }, t("Connect")),
    h("span", { class: "muted small" }, t("Sessions are recorded with who, when and which host."))));

  const hostFilter = h("input", { type: "search", placeholder: t("host"), value: query.host || "", size: 14 });
  const userFilter = h("input", { type: "search", placeholder: t("user"), value: query.user || "", size: 10 });
  const body = h("tbody", { id: "sessions-body" });
  const foot = h("div", { class: "pager" });
  content.append(h("h2", { class: "mt-16" }, t("Recorded sessions")),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); load(); } }, hostFilter, userFilter, h("button", { type: "submit" }, t("Filter"))),
    h("div", { class: "table-wrap" }, h("table", { id: "sessions-table" },
      h("thead", {}, h("tr", {}, ["#", t("user"), t("host"), t("from"), t("started"), t("duration"), t("status"), t("recording"), ""].map((x) => h("th", {}, x)))), body)), foot);

  async function load() {
    setQuery({ host: hostFilter.value, user: userFilter.value });
    const page = await api("terminal/sessions", { query: { host: hostFilter.value, username: userFilter.value, limit: 100 } });
    fill(body, page.items.length ? page.items.map((s) => h("tr", { "data-session": s.id },
      h("td", { class: "mono" }, String(s.id)), h("td", {}, s.user),
      h("td", { class: "mono" }, s.host, h("span", { class: "faint small" }, ` ${s.login_user}@${s.address}`)),
      h("td", { class: "small mono" }, s.client_address), h("td", { class: "small nowrap" }, fmtTime(s.started_at)),
      h("td", { class: "num small" }, s.ended_at ? fmtDuration(s.duration) : ""),
      h("td", { title: s.reason }, badge(s.status, t(s.status)), s.reason ? h("div", { class: "small muted" }, s.reason) : null),
      h("td", { class: "small nowrap" }, fmtBytes(s.recording_bytes), s.recording_truncated ? [" ", badge("interrupted", t("cut"))] : null),
      h("td", { class: "nowrap" }, h("button", { class: "small", onclick: () => go(`#/terminal/replay/${s.id}`) }, t("Replay")), " ",
        h("button", { class: "small", onclick: () => download(s.id) }, ".cast"))))
      : h("tr", {}, h("td", { colspan: 9, class: "empty" }, t("No sessions yet."))));
    foot.textContent = t("{n} sessions", { n: page.total });
  }
  await load();
}

async function download(id) {
  const text = await apiText(`terminal/sessions/${id}/recording`);
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-asciicast" })), download: `terminal-${id}.cast` });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function newTerminal(options = {}) {
  return new Terminal({ fontFamily: FONT, fontSize: 13, cursorBlink: true, theme: THEME, scrollback: 5000, allowProposedApi: false, ...options });
}

async function openShell({ title, content, go }, host) {
  content.classList.add("fill");
  const state = h("span", { class: "small muted", id: "term-state" }, t("connecting…"));
  title.append(h("h1", {}, t("Terminal: {host}", { host })), state);
  const wrap = h("div", { class: "term-wrap", id: "terminal" });
  const info = h("span", { class: "small muted grow", id: "term-info" });
  const closeBtn = h("button", { id: "term-close", onclick: () => { closed = true; send({ type: "close" }); } }, t("Disconnect"));
  content.append(h("div", { class: "term-bar" }, info,
    h("button", { class: "small", onclick: copy }, t("Copy selection")),
    h("button", { class: "small", onclick: paste }, t("Paste")),
    closeBtn, h("button", { class: "small", onclick: () => go("#/terminal") }, t("Sessions"))), wrap);

  const term = newTerminal();
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(wrap);
  fit.fit();
  term.focus();
  let closed = false;
  let sessionId = null;
  const ws = socket("terminal/connect", { host, cols: term.cols, rows: term.rows });
  const send = (msg) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "output") term.write(msg.data);
    else if (msg.type === "notice") { term.write(`\r\n\x1b[33m[small-yi] ${msg.message}\x1b[0m\r\n`); toast(msg.message); }
    else if (msg.type === "ready") {
      sessionId = msg.session.id;
      state.textContent = t("connected");
      state.dataset.state = "connected";
      info.textContent = t("{login}@{host} · session #{id} · recorded · closes after {idle} without input",
        { login: msg.session.login_user, host: msg.session.address, id: sessionId, idle: fmtDuration(msg.idle_timeout) });
    } else if (msg.type === "error") {
      state.textContent = msg.message; state.className = "small error"; state.dataset.state = "error";
      term.write(`\r\n\x1b[31m${msg.message}\x1b[0m\r\n`);
    } else if (msg.type === "closed") {
      state.textContent = t("closed: {why}", { why: msg.reason || msg.status });
      state.dataset.state = "closed";
      term.write(`\r\n\x1b[90m[${t("session closed")}${msg.reason ? `: ${msg.reason}` : ""}]\x1b[0m\r\n`);
    }
  };
  ws.onclose = () => {
    closeBtn.disabled = true;
    if (state.dataset.state === "connected" || !state.dataset.state) { state.textContent = t("disconnected"); state.dataset.state = "closed"; }
    if (sessionId) info.append(" · ", h("a", { href: `#/terminal/replay/${sessionId}` }, t("Replay this session")));
  };
  term.onData((data) => send({ type: "input", data }));
  term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
  const observer = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
  observer.observe(wrap);

  async function copy() {
    const text = term.getSelection();
    if (!text) { toast(t("Select text in the terminal first.")); return; }
    try { await navigator.clipboard.writeText(text); toast(t("Copied.")); } catch { toast(t("The browser refused clipboard access; use Ctrl+Shift+C."), true); }
  }
  async function paste() {
    try { const text = await navigator.clipboard.readText(); if (text) term.paste(text); term.focus(); } catch { toast(t("The browser refused clipboard access; use Ctrl+Shift+V."), true); }
  }
  // Ctrl+Shift+C / Ctrl+Shift+V copy and paste, as in desktop terminals; plain Ctrl+C stays an interrupt
  term.attachCustomKeyEventHandler((e) => {
    if (e.type === "keydown" && e.ctrlKey && e.shiftKey && (e.code === "KeyC" || e.code === "KeyV")) {
      if (e.code === "KeyC") copy(); else paste();
      return false;
    }
    return true;
  });
  return () => { closed = true; observer.disconnect(); if (ws.readyState <= WebSocket.OPEN) ws.close(); term.dispose(); };
}

/** asciicast v2 text → {header, events: [[time, type, data], ...]} */
export function parseCast(text) {
  const lines = text.split("\n").filter((l) => l.trim());
  if (!lines.length) throw new Error("empty recording");
  const header = JSON.parse(lines[0]);
  const events = [];
  for (const l of lines.slice(1)) { try { events.push(JSON.parse(l)); } catch { /* a cut last line */ } }
  return { header, events };
}

async function replay({ title, content, go }, id) {
  content.classList.add("fill");
  const meta = await api(`terminal/sessions/${id}`);
  title.append(h("h1", {}, t("Replay of session #{id}", { id })), h("span", { class: "small muted" }, `${meta.user} → ${meta.host} · ${fmtTime(meta.started_at)}`));
  const cast = parseCast(await apiText(`terminal/sessions/${id}/recording`));
  const wrap = h("div", { class: "term-wrap", id: "replay" });
  const playBtn = h("button", { class: "primary", id: "replay-play" }, t("Play"));
  const speed = h("select", { id: "replay-speed" }, [1, 2, 4, 8].map((s) => h("option", { value: s }, `${s}×`)));
  const range = h("input", { type: "range", min: 0, max: cast.events.length, value: 0, id: "replay-pos" });
  const clock = h("span", { class: "small mono", id: "replay-clock" });
  const stateEl = h("span", { class: "small muted", id: "replay-state" });
  const total = cast.events.length ? cast.events[cast.events.length - 1][0] : 0;
  content.append(h("div", { class: "term-bar" },
    h("span", { class: "small muted grow" }, `${cast.header.width}×${cast.header.height} · ${fmtDuration(total)} · ${t("{n} events", { n: cast.events.length })}`,
      meta.recording_truncated ? [" · ", badge("interrupted", t("recording was cut at its size limit"))] : null),
    h("button", { class: "small", onclick: () => go("#/terminal") }, t("Sessions"))), wrap,
  h("div", { class: "player-bar" }, playBtn, speed, range, clock, stateEl));
  const term = newTerminal({ cols: cast.header.width, rows: cast.header.height, cursorBlink: false, disableStdin: true });
  term.open(wrap);
  // the recording has its own size: shrink the font until it fits the space here
  const fitFont = () => {
    const el = term.element;
    if (!el) return;
    for (let size = term.options.fontSize; size > 7; size--) {
      if (el.offsetWidth <= wrap.clientWidth - 12 && el.offsetHeight <= wrap.clientHeight - 12) break;
      term.options.fontSize = size - 1;
    }
  };
  fitFont();

  let pos = 0; let playing = false; let timer = null;
  const MAX_GAP = 2; // seconds: long pauses are shortened
  function apply(e) {
    if (e[1] === "o") term.write(e[2]);
    else if (e[1] === "r") { const [c, r] = String(e[2]).split("x").map(Number); if (c && r) { term.resize(c, r); fitFont(); } }
  }
  function show() { range.value = String(pos); clock.textContent = `${fmtDuration(pos ? cast.events[pos - 1][0] : 0)} / ${fmtDuration(total)}`; }
  function step() {
    if (!playing) return;
    if (pos >= cast.events.length) {
      playing = false; playBtn.textContent = t("Play again");
      // xterm parses and paints asynchronously: say "finished" once the last event is on the screen
      term.write("", () => requestAnimationFrame(() => { stateEl.textContent = t("finished"); stateEl.dataset.state = "finished"; }));
      return;
    }
    apply(cast.events[pos]); pos += 1; show();
    const next = cast.events[pos];
    const gap = next ? Math.min(Math.max(next[0] - cast.events[pos - 1][0], 0), MAX_GAP) / Number(speed.value) : 0;
    timer = setTimeout(step, gap * 1000);
  }
  function seek(to) {
    clearTimeout(timer);
    term.reset();
    for (let i = 0; i < to; i++) apply(cast.events[i]);
    pos = to; show();
    if (playing) step();
  }
  playBtn.addEventListener("click", () => {
    if (playing) { playing = false; clearTimeout(timer); playBtn.textContent = t("Play"); stateEl.textContent = t("paused"); return; }
    if (pos >= cast.events.length) { term.reset(); pos = 0; }
    playing = true; playBtn.textContent = t("Pause"); stateEl.textContent = t("playing"); stateEl.dataset.state = "playing"; step();
  });
  range.addEventListener("input", () => seek(Number(range.value)));
  show();
  playBtn.click();
  return () => { playing = false; clearTimeout(timer); term.dispose(); };
}
