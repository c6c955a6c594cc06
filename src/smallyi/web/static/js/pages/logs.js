// Log follow: `tail -F` of files across a target, merged and prefixed, over WS /api/v1/logs/stream.
// The server greps (the "grep on the hosts" box); the "filter shown lines" box filters what arrived.
import { socket } from "../api.js";
import { clear, fill, h, splitList } from "../dom.js";
import { t } from "../i18n.js";

const SHOW = 5000;

export async function render({ title, content, query, setQuery }) {
  content.classList.add("fill");
  title.append(h("h1", {}, t("Follow logs")));
  const group = h("input", { id: "log-group", placeholder: t("group"), value: query.group || "", size: 12 });
  const hosts = h("input", { id: "log-hosts", placeholder: t("hosts (comma-separated)"), value: query.hosts || "", size: 18 });
  const files = h("input", { id: "log-files", placeholder: "/var/log/syslog", value: query.file || "", size: 26, required: true });
  const grep = h("input", { id: "log-grep", placeholder: t("grep on the hosts"), value: query.grep || "", size: 14 });
  const lines = h("input", { id: "log-lines", type: "number", min: 0, value: query.lines || 10, class: "lines-input", title: t("lines of history per file") });
  const startBtn = h("button", { class: "primary", type: "submit", id: "log-start" }, t("Follow"));
  const stopBtn = h("button", { type: "button", id: "log-stop", disabled: true, onclick: stop }, t("Stop"));
  const filter = h("input", { type: "search", id: "log-filter", placeholder: t("filter shown lines"), size: 20 });
  const state = h("span", { class: "small muted", id: "log-state" });
  const out = h("div", { class: "stream", id: "log-output" });
  const cap = h("div", { class: "cap", hidden: true });
  content.append(
    h("form", { class: "toolbar align-end", onsubmit: (e) => { e.preventDefault(); start(); } },
      h("label", { class: "field" }, t("Group"), group), h("label", { class: "field" }, t("Hosts"), hosts),
      h("label", { class: "field" }, t("Files (comma-separated)"), files), h("label", { class: "field" }, t("grep on the hosts"), grep),
      h("label", { class: "field" }, t("History lines"), lines), startBtn, stopBtn),
    h("div", { class: "toolbar" }, filter, state),
    h("div", { class: "pane stream-box" }, cap, out));

  let ws = null;
  let all = [];
  let dropped = 0;
  let needle = "";
  const match = (l) => !needle || `[${l.host}] ${l.text}`.toLowerCase().includes(needle);
  const lineEl = (l) => h("div", { class: `ln${l.stream === "stderr" ? " err" : ""}` }, l.host ? h("span", { class: "h" }, `[${l.host}]`) : null, " ", h("span", { class: "t" }, l.text));
  function rebuild() {
    clear(out);
    const frag = document.createDocumentFragment();
    all.filter(match).slice(-SHOW).forEach((l) => frag.append(lineEl(l)));
    out.append(frag);
    out.scrollTop = out.scrollHeight;
  }
  filter.addEventListener("input", () => { needle = filter.value.trim().toLowerCase(); rebuild(); });

  function start() {
    stop();
    all = []; dropped = 0; clear(out); cap.hidden = true;
    const q = { group: group.value, hosts: splitList(hosts.value).join(","), file: splitList(files.value), grep: grep.value, lines: lines.value };
    setQuery({ ...q, file: files.value });
    ws = socket("logs/stream", q);
    state.textContent = t("connecting…");
    startBtn.disabled = true; stopBtn.disabled = false;
    ws.onopen = () => { state.textContent = t("following"); state.dataset.state = "live"; };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "error") { state.textContent = msg.message; state.className = "small error"; return; }
      const fresh = msg.events.filter((e) => e.stream === "stdout" || e.stream === "stderr");
      all.push(...fresh);
      if (all.length > SHOW * 2) { dropped += all.length - SHOW; all = all.slice(-SHOW); }
      const frag = document.createDocumentFragment();
      fresh.filter(match).forEach((l) => frag.append(lineEl(l)));
      const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 30;
      out.append(frag);
      let extra = out.childElementCount - SHOW;
      while (extra-- > 0) out.firstChild.remove();
      if (stick) out.scrollTop = out.scrollHeight;
      cap.hidden = !dropped;
      cap.textContent = t("{n} earlier lines are no longer shown (the view keeps the last {show}).", { n: dropped, show: SHOW });
    };
    ws.onclose = () => { startBtn.disabled = false; stopBtn.disabled = true; if (state.dataset.state === "live") state.textContent = t("stopped"); state.dataset.state = "stopped"; ws = null; };
  }
  function stop() { if (ws) ws.close(); }
  return () => stop();
}
