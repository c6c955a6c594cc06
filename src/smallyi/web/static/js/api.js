// The console's only way to the server: the public HTTP API and its WebSockets.
// Tokens travel in headers or the WebSocket subprotocol, never in a URL (URLs end up in logs).

const TOKEN_KEY = "smallyi.token";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status; this.code = code; this.field = field;
  }
}

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
}
/** Called with no argument when the server says we are no longer logged in. */
export function onUnauthorized(fn) { listeners.add(fn); }

/** The console's base URL (the page's folder): works under any reverse-proxy path prefix. */
export function baseUrl() {
  return new URL(".", window.location.href);
}

function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), baseUrl());
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else u.searchParams.set(k, v);
  }
  return u;
}

/** fetch → JSON (or null for 204); throws ApiError with the server's message. */
export async function api(path, { method = "GET", body, query, raw, headers = {}, signal } = {}) {
  const h = { "X-SmallYi-CSRF": "1", ...headers };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) { payload = JSON.stringify(body); h["Content-Type"] = "application/json"; }
  let resp;
  try {
    resp = await fetch(url(`api/v1/${path.replace(/^\//, "")}`, query), {
      method, headers: h, body: payload, credentials: "same-origin", signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network", "the server cannot be reached");
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { raw: text }; }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    if (resp.status === 401 && !path.startsWith("auth/login")) listeners.forEach((fn) => fn());
    throw new ApiError(resp.status, e.code || "error", e.message || `HTTP ${resp.status}`, e.field);
  }
  return data;
}

/** The body of a non-JSON endpoint (a recording) as text. */
export async function apiText(path) {
  const h = { "X-SmallYi-CSRF": "1" };
  if (token()) h.Authorization = `Bearer ${token()}`;
  const resp = await fetch(url(`api/v1/${path}`), { headers: h, credentials: "same-origin" });
  if (!resp.ok) throw new ApiError(resp.status, "error", `HTTP ${resp.status}`);
  return resp.text();
}

/** A WebSocket to an API path; authenticated by the bearer.<token> subprotocol (or the cookie). */
export function socket(path, query) {
  const u = url(`api/v1/${path}`, query);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  return t ? new WebSocket(u, [`bearer.${t}`]) : new WebSocket(u);
}
