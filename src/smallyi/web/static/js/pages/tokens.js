// API tokens for scripts and CI: create (the token is shown once), list by prefix, revoke.
import { api } from "../api.js";
import { clear, fill, fmtTime, h, toast } from "../dom.js";
import { t } from "../i18n.js";

export async function render({ title, content }) {
  title.append(h("h1", {}, t("API tokens")));
  const name = h("input", { id: "token-name", placeholder: t("name, e.g. ci"), required: true, maxlength: 128 });
  const ttl = h("select", { id: "token-ttl" }, [["", t("never expires")], ["24h", t("1 day")], ["720h", t("30 days")], ["8760h", t("1 year")]]
    .map(([v, l]) => h("option", { value: v }, l)));
  const shown = h("div", { id: "token-shown" });
  const error = h("p", { class: "error" });
  const body = h("tbody", { id: "tokens-body" });
  content.append(
    h("div", { class: "card" },
      h("h2", {}, t("New token")),
      h("p", { class: "muted small" }, t("Use it as 'Authorization: Bearer <token>' or SMALLYI_TOKEN. It acts as you, with your role.")),
      h("form", { class: "toolbar", onsubmit: create }, name, ttl, h("button", { class: "primary", type: "submit" }, t("Create token"))), error, shown),
    h("div", { class: "card" }, h("h2", {}, t("Your tokens")),
      h("div", { class: "table-wrap" }, h("table", { id: "tokens-table" },
        h("thead", {}, h("tr", {}, [t("name"), t("prefix"), t("created"), t("expires"), t("last used"), ""].map((x) => h("th", {}, x)))), body))));

  async function create(e) {
    e.preventDefault();
    error.textContent = "";
    try {
      const r = await api("auth/tokens", { method: "POST", body: { name: name.value, ttl: ttl.value || null } });
      const secret = h("div", { class: "secret", id: "token-secret" }, r.token);
      fill(shown, h("p", { class: "notice" }, t("Copy this token now: it is shown only once and cannot be read back.")), secret,
        h("div", { class: "row mt-6" }, h("button", { class: "small", onclick: async () => {
          try { await navigator.clipboard.writeText(r.token); toast(t("Copied.")); } catch { toast(t("Select the text and copy it."), true); }
        } }, t("Copy")), h("button", { class: "small link", onclick: () => clear(shown) }, t("Done, hide it"))));
      name.value = "";
      await load();
    } catch (err) { error.textContent = err.message; }
  }

  async function load() {
    const page = await api("auth/tokens", { query: { limit: 1000 } });
    fill(body, page.items.length ? page.items.map((x) => h("tr", { "data-token": x.id },
      h("td", {}, x.name), h("td", { class: "mono" }, `${x.prefix}…`), h("td", { class: "small" }, fmtTime(x.created_at)),
      h("td", { class: "small" }, x.expires_at ? fmtTime(x.expires_at) : t("never")), h("td", { class: "small" }, x.last_used_at ? fmtTime(x.last_used_at) : "—"),
      h("td", {}, h("button", { class: "small danger", onclick: async () => {
        if (!window.confirm(t("Revoke token {name}? Scripts using it stop working at once.", { name: x.name }))) return;
        try { await api(`auth/tokens/${x.id}`, { method: "DELETE" }); await load(); } catch (err) { toast(err.message, true); }
      } }, t("Revoke"))))) : h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("No API tokens yet."))));
  }
  await load();
}
