// Pieces more than one page uses: rights, final statuses, targets, a pager, archived output, times in a
// zone. A helper a second page needs moves here rather than being written again.
import { fmtBytes, h, labelsText, parseLabels, splitList } from "../dom.js";
import { t } from "../i18n.js";

/** The statuses a task or a SOP run ends in: once there, it changes no more (no cancel, no "live"). */
export const FINAL = new Set(["success", "failed", "cancelled", "interrupted"]);

/** Whether the signed-in user's role holds `perm` (to hide or disable buttons; the API decides). */
export function can(session, perm) {
  const perms = session.user && session.user.permissions;
  return !Array.isArray(perms) || perms.includes(perm) || perms.includes("*");
}

/** A target as text: "group web · hosts a,b · env=prod". */
export function targetText(target) {
  if (!target) return "";
  const parts = [];
  if (target.group) parts.push(`${t("group")} ${target.group}`);
  if (target.hosts && target.hosts.length) parts.push(`${t("hosts")} ${target.hosts.join(",")}`);
  if (target.labels && Object.keys(target.labels).length) parts.push(labelsText(target.labels));
  return parts.join(" · ");
}

/** Group / hosts / labels inputs; `.value()` gives the target (or null when empty), throws on bad labels. */
export function targetInputs(groups, target = {}, prefix = "t") {
  const group = h("select", { id: `${prefix}-group` }, h("option", { value: "" }, t("(any group)")),
    groups.map((g) => h("option", { value: g.name, selected: g.name === target.group }, `${g.name} (${g.host_count})`)));
  const hosts = h("input", { id: `${prefix}-hosts`, placeholder: "web-01, web-02", value: (target.hosts || []).join(", ") });
  const labels = h("input", { id: `${prefix}-labels`, placeholder: "env=prod", value: labelsText(target.labels) });
  return {
    fields: [
      h("label", { class: "field" }, t("Group"), group),
      h("label", { class: "field" }, t("Hosts (comma-separated)"), hosts),
      h("label", { class: "field" }, t("Labels (k=v, all must match)"), labels)],
    value() {
      const v = { group: group.value || null, hosts: splitList(hosts.value), labels: parseLabels(labels.value) };
      return v.group || v.hosts.length || Object.keys(v.labels).length ? v : null;
    },
  };
}

/**
 * "Previous · 51–100 of 240 · Next" under a list of `size` a page; `load(offset)` fetches another page.
 * `id` names the range text, for tests to find.
 */
export function pager(offset, count, total, load, { size = 50, id = "pager-text" } = {}) {
  return h("div", { class: "pager" },
    h("button", { class: "small", disabled: offset === 0, onclick: () => load(Math.max(0, offset - size)) }, t("Previous")),
    h("span", { id }, t("{from}–{to} of {total}", { from: total ? offset + 1 : 0, to: offset + count, total })),
    h("button", { class: "small", disabled: offset + size >= total, onclick: () => load(offset + size) }, t("Next")));
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

/** An ISO time shown as wall-clock time in an IANA zone: "2026-11-27 14:30". */
export function inZone(iso, zone) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {
      timeZone: zone || "UTC", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23",
    }).formatToParts(d).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}${parts.second !== "00" ? `:${parts.second}` : ""}`;
  } catch { return d.toISOString(); }
}

/** "in 4m", "in 2h10m", "3m ago". */
export function relative(iso) {
  if (!iso) return "";
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a}s` : a < 3600 ? `${Math.floor(a / 60)}m` : a < 86400 * 2
    ? `${Math.floor(a / 3600)}h${Math.floor((a % 3600) / 60) ? `${Math.floor((a % 3600) / 60)}m` : ""}` : `${Math.floor(a / 86400)}d`;
  return s >= 0 ? t("in {d}", { d: text }) : t("{d} ago", { d: text });
}

/** A value as short text for tables (JSON for objects). */
export function short(value, max = 200) {
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
