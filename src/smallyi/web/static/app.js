// small-yi console: a plain client of the HTTP API (bearer token kept for this browser tab only).
"use strict";
const api = "api/v1";
let token = sessionStorage.getItem("smallyi-token");
let socket = null;
const $ = (sel) => document.querySelector(sel);

async function call(method, path, body) {
  const r = await fetch(`${api}${path}`, {
    method, headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && path !== "/auth/login") { logout(); throw new Error("session ended; log in again"); }
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) throw new Error(data && data.error ? data.error.message : r.statusText);
  return data;
}

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  if (view === "tasks") loadTasks();
  if (view === "hosts") loadHosts();
}

function route() {
  if (!token) { $("#nav").hidden = true; $("#logout").hidden = true; $("#who").textContent = ""; show("login"); return; }
  $("#nav").hidden = false; $("#logout").hidden = false;
  const m = location.hash.match(/^#task\/(\d+)/);
  if (m) { show("run"); follow(Number(m[1])); return; }
  show((location.hash || "#run").slice(1) || "run");
}

async function whoami() {
  try { const me = await call("GET", "/auth/me"); $("#who").textContent = `${me.username} (${me.role})`; } catch (e) { /* logged out */ }
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    const r = await call("POST", "/auth/login", { username: f.get("username"), password: f.get("password") });
    token = r.token; sessionStorage.setItem("smallyi-token", token); $("#login-error").textContent = "";
    await whoami(); route();
  } catch (e) { $("#login-error").textContent = e.message; }
});

function logout() {
  if (token) fetch(`${api}/auth/logout`, { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  token = null; sessionStorage.removeItem("smallyi-token"); route();
}
$("#logout").addEventListener("click", logout);

function target(f) {
  const t = {};
  if (f.get("group")) t.group = f.get("group").trim();
  const hosts = (f.get("hosts") || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (hosts.length) t.hosts = hosts;
  const labels = {};
  for (const kv of (f.get("labels") || "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const i = kv.indexOf("="); if (i > 0) labels[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (Object.keys(labels).length) t.labels = labels;
  return t;
}

let countTimer = null;
$("#run-form").addEventListener("input", () => {
  clearTimeout(countTimer);
  countTimer = setTimeout(async () => {
    const t = target(new FormData($("#run-form")));
    if (!Object.keys(t).length) { $("#match-count").textContent = ""; return; }
    try { const r = await call("POST", "/targets/resolve", t); $("#match-count").textContent = `${r.total} hosts match`; }
    catch (e) { $("#match-count").textContent = e.message; }
  }, 300);
});

$("#run-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { target: target(f), cmd: f.get("cmd"), timeout: f.get("timeout") || undefined };
  if (f.get("concurrency")) body.concurrency = Number(f.get("concurrency"));
  try {
    $("#run-error").textContent = "";
    const task = await call("POST", "/tasks", body);
    location.hash = `#task/${task.id}`;
  } catch (e) { $("#run-error").textContent = e.message; }
});

// Live output: resumes from the last sequence seen, so a dropped connection loses nothing.
let current = { id: null, last: 0, counts: {} };
function follow(id) {
  if (socket) { socket.onclose = null; socket.close(); }
  if (current.id !== id) { current = { id, last: 0, counts: {}, total: 0 }; $("#output").textContent = ""; }
  call("GET", `/tasks/${id}`).then((t) => { current.total = t.host_count; head(t); }).catch((e) => { $("#run-error").textContent = e.message; });
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const base = location.pathname.replace(/[^/]*$/, "");
  socket = new WebSocket(`${proto}://${location.host}${base}${api}/tasks/${id}/stream?after=${current.last}`, [`bearer.${token}`]);
  socket.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "end") { head(msg.task); $("#cancel").hidden = true; return; }
    const out = $("#output"), stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 5;
    const frag = document.createDocumentFragment();
    for (const e of msg.events) {
      if (e.seq <= current.last) continue;
      current.last = e.seq;
      if (e.stream === "done") { current.counts[e.status] = (current.counts[e.status] || 0) + 1; }
      if (e.stream !== "stdout" && e.stream !== "stderr" && !(e.stream === "done" && e.status !== "success")) continue;
      const line = document.createElement("div"); line.dataset.host = e.host;
      const h = document.createElement("span"); h.className = "host"; h.textContent = `[${e.host}] `;
      const t = document.createElement("span"); if (e.stream !== "stdout") t.className = "err";
      t.textContent = e.stream === "done" ? `${e.status}: ${e.reason}` : e.text;
      line.append(h, t); applyFilter(line); frag.append(line);
    }
    out.append(frag); if (stick) out.scrollTop = out.scrollHeight;
    counters();
  };
  socket.onclose = (ev) => { if (ev.code !== 1000 && current.id === id) setTimeout(() => follow(id), 1000); };
}

function counters() {
  const done = Object.values(current.counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(current.counts).map(([k, v]) => `<span class="status-${k}">${k} ${v}</span>`).join("");
  const el = document.getElementById("counters"); if (el) el.innerHTML = `<span>${done}/${current.total} done</span>${parts}`;
}

function head(t) {
  const h = $("#task-head"); h.textContent = "";
  const title = document.createElement("h3");
  title.textContent = `Task ${t.id}: ${t.command} — ${t.status}${t.queue_position ? ` (queue position ${t.queue_position})` : ""}`;
  const c = document.createElement("div"); c.id = "counters"; c.className = "counters";
  h.append(title, c); counters();
  $("#cancel").hidden = ["success", "failed", "cancelled", "interrupted"].includes(t.status);
}

$("#cancel").addEventListener("click", async () => { if (current.id) await call("POST", `/tasks/${current.id}/cancel`); });

function applyFilter(line) {
  const q = $("#host-filter").value.trim();
  line.hidden = q !== "" && !line.dataset.host.includes(q);
}
$("#host-filter").addEventListener("input", () => { for (const l of $("#output").children) applyFilter(l); });

function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.append(td); }

async function loadTasks() {
  const f = new FormData($("#tasks-form"));
  const q = new URLSearchParams(); for (const [k, v] of f) if (v) q.set(k, v);
  const body = $("#tasks-table tbody"); body.textContent = "";
  try {
    const r = await call("GET", `/tasks?${q}`);
    for (const t of r.items) {
      const tr = document.createElement("tr");
      const a = document.createElement("a"); a.href = `#task/${t.id}`; a.textContent = t.id;
      const td = document.createElement("td"); td.append(a); tr.append(td);
      cell(tr, t.status, `status-${t.status}`); cell(tr, t.host_count);
      cell(tr, Object.entries(t.counts).map(([k, v]) => `${k}:${v}`).join(" "));
      cell(tr, (t.created_at || "").slice(0, 19).replace("T", " ")); cell(tr, t.created_by); cell(tr, t.command);
      body.append(tr);
    }
  } catch (e) { body.textContent = e.message; }
}
$("#tasks-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadTasks(); });

async function loadHosts() {
  const f = new FormData($("#hosts-form"));
  const q = new URLSearchParams({ limit: "500" }); for (const [k, v] of f) if (v) q.set(k, v);
  const body = $("#hosts-table tbody"); body.textContent = "";
  try {
    const r = await call("GET", `/hosts?${q}`);
    for (const h of r.items) {
      const tr = document.createElement("tr");
      cell(tr, h.name); cell(tr, h.address); cell(tr, h.port); cell(tr, h.user || "");
      cell(tr, (h.groups || []).join(", ")); cell(tr, Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(" "));
      body.append(tr);
    }
  } catch (e) { body.textContent = e.message; }
}
$("#hosts-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadHosts(); });

window.addEventListener("hashchange", route);
if (token) whoami();
route();
