// The audit trail: who did what, when, from where, with what result; search, chain check, export.
import { api } from "../api.js";
import { fill, fmtTime, h } from "../dom.js";
import { t } from "../i18n.js";
import { pager } from "./shared.js";

const PAGE = 50;

export async function render({ title, content, query, setQuery }) {
  title.append(h("h1", {}, t("Audit trail")));
  const input = (name, placeholder, size) => h("input", { name, id: `a-${name}`, placeholder: t(placeholder), value: query[name] || "", size });
  const fields = [input("actor", "user", 10), input("action", "action, e.g. task.", 14), input("target", "target contains", 14),
    input("since", "since: 24h or a date", 14), input("until", "until", 12)];
  const error = h("p", { class: "error" });
  const chain = h("span", { id: "audit-chain", class: "small" });
  const body = h("tbody", { id: "audit-body" });
  const foot = h("div");
  const exportLink = (fmt) => h("a", { class: "button small", id: `audit-export-${fmt}`, href: "#", onclick: (e) => {
    e.preventDefault();
    const qs = new URLSearchParams(Object.entries(params()).filter(([, v]) => v)).toString();
    window.location.href = `api/v1/audit/export?format=${fmt}${qs ? `&${qs}` : ""}`;
  } }, fmt === "jsonl" ? t("Export JSON lines") : t("Export CSV"));
  content.append(h("div", { class: "card" },
    h("form", { class: "toolbar", id: "audit-form", onsubmit: (e) => { e.preventDefault(); load(0); } }, ...fields,
      h("button", { class: "primary", type: "submit" }, t("Search"))),
    h("div", { class: "row" }, h("button", { class: "small", id: "audit-verify", onclick: verify }, t("Check the chain")), chain,
      exportLink("jsonl"), exportLink("csv")),
    error,
    h("div", { class: "table-wrap" }, h("table", { id: "audit-table" },
      h("thead", {}, h("tr", {}, ["#", t("when"), t("who"), t("from"), t("action"), t("target"), t("result")].map((x) => h("th", {}, x)))), body)),
    foot));

  function params() {
    return Object.fromEntries(fields.map((f) => [f.name, f.value.trim()]));
  }

  async function verify() {
    try {
      const r = await api("audit/verify");
      const anchor = r.anchor && r.anchor.seq !== null
        ? t("; anchored at record {seq} (written {at})", { seq: r.anchor.seq, at: fmtTime(r.anchor.at) }) : "";
      fill(chain, r.ok ? t("intact: {n} records, head {hash}", { n: r.checked, hash: r.head_hash.slice(0, 16) }) + anchor
        : h("span", { class: "error" }, r.findings.map((f) => f.message).join("; ")));
    } catch (err) { fill(chain, h("span", { class: "error" }, err.message)); }
  }

  async function load(offset) {
    error.textContent = "";
    const p = params();
    setQuery(p);
    try {
      const page = await api("audit", { query: { ...p, limit: PAGE, offset } });
      fill(body, page.items.length ? page.items.map((x) => h("tr", { "data-audit": x.id },
        h("td", { class: "mono small" }, String(x.id)), h("td", { class: "small" }, fmtTime(x.at)), h("td", {}, x.actor || "—"),
        h("td", { class: "mono small" }, x.client || "—"), h("td", { class: "mono" }, x.action), h("td", { class: "small" }, x.target),
        h("td", { class: x.result === "ok" ? "" : "error" }, x.result))) : h("tr", {}, h("td", { colspan: 7, class: "empty" }, t("No records."))));
      fill(foot, pager(offset, page.items.length, page.total, load, { size: PAGE }));
    } catch (err) { error.textContent = err.message; }
  }
  await load(0);
}
