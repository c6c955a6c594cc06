// Small DOM helpers. Data is only ever put in the page as text (textContent), never parsed as HTML.

/** h("div", {class: "x", onclick: fn}, "text", child, [more]) → an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected" || k === "hidden") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m}m${s}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

export function fmtBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function badge(status, text) {
  return h("span", { class: `badge s-${status}` }, text ?? status);
}

/** A short-lived message at the bottom right. */
export function toast(message, bad = false) {
  const el = h("div", { class: `toast${bad ? " bad" : ""}`, role: "status" }, message);
  document.body.append(el);
  setTimeout(() => el.remove(), bad ? 6000 : 3000);
}

/** Call fn at most once per `ms`, with the last arguments. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/** Parse "k=v, k2=v2" (commas, spaces or new lines) into an object; throws on a bad item. */
export function parseLabels(text) {
  const out = {};
  for (const item of String(text || "").split(/[\s,]+/).filter(Boolean)) {
    const i = item.indexOf("=");
    if (i <= 0) throw new Error(`"${item}" is not key=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function labelsText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

export function splitList(text) {
  return String(text || "").split(/[\s,]+/).filter(Boolean);
}

/** A modal <dialog>: returns {dialog, body, foot, close}. Removed from the page when closed. */
export function modal(title, { wide = false } = {}) {
  const body = h("div", { class: "dlg-body" });
  const foot = h("div", { class: "dlg-foot" });
  const dialog = h("dialog", { class: wide ? "wide" : null },
    h("div", { class: "dlg-head" }, h("h2", { class: "grow" }, title),
      h("button", { class: "link", "aria-label": "close", onclick: () => dialog.close() }, "✕")),
    body, foot);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, foot, close: () => dialog.close() };
}

/** Replace an element's children (arrays, strings and nulls allowed, as in h()). */
export function fill(el, ...children) {
  clear(el);
  return append(el, children);
}
