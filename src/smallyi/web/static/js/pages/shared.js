// Pieces shared by the SOP, run, approval and schedule pages: rights, targets, times in a zone.
import { h, labelsText, parseLabels, splitList } from "../dom.js";
import { t } from "../i18n.js";

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
