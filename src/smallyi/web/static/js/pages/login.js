// The login form. On success the token is kept for this browser tab only (sessionStorage).
import { api, setToken } from "../api.js";
import { fill, h } from "../dom.js";
import { t } from "../i18n.js";

export function render(app, { languageSelect, onLogin }) {
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  const user = h("input", { name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "primary", type: "submit" }, t("Log in"));
  const form = h("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        const r = await api("auth/login", { method: "POST", body: { username: user.value, password: pass.value } });
        setToken(r.token);
        await onLogin();
      } catch (err) {
        error.textContent = err.message;
        submit.disabled = false;
      }
    },
  },
  h("div", { class: "row" }, h("div", { class: "brand grow" }, h("img", { src: "static/favicon.svg", alt: "" }), "small-yi"),
    h("span", { class: "lang" }, languageSelect())),
  h("label", { class: "field" }, t("User name"), user),
  h("label", { class: "field" }, t("Password"), pass),
  submit, error);
  fill(app, h("div", { class: "login" }, form));
  user.focus();
}
