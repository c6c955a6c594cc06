// The task form: a target (group / hosts / labels) with a live count of matching hosts, the command,
// timeout, concurrency and rate. "Run again" elsewhere fills it through sessionStorage.
import { api } from "../api.js";
import { fill, debounce, h, labelsText, parseLabels, splitList } from "../dom.js";
import { t } from "../i18n.js";

export const RERUN_KEY = "smallyi.rerun";

/** Remember a task so the form opens filled with it. */
export function prepareRerun(task) {
  sessionStorage.setItem(RERUN_KEY, JSON.stringify({
    target: task.target || {}, cmd: task.command, timeout: `${task.timeout}s`, concurrency: task.concurrency,
    rate: task.rate || "",
  }));
}

export async function render({ title, content, query, go }) {
  title.append(h("h1", {}, t("Run a command")));
  let preset = {};
  try { preset = JSON.parse(sessionStorage.getItem(RERUN_KEY) || "{}"); } catch { preset = {}; }
  sessionStorage.removeItem(RERUN_KEY);
  const target = preset.target || {};
  const groups = await api("groups", { query: { limit: 1000 } });
  const group = h("select", { name: "group", id: "run-group" }, h("option", { value: "" }, t("(any group)")),
    groups.items.map((g) => h("option", { value: g.name, selected: g.name === (target.group || query.group) }, `${g.name} (${g.host_count})`)));
  const hosts = h("input", { name: "hosts", id: "run-hosts", placeholder: "web-01, web-02", value: (target.hosts || []).join(", ") || query.hosts || "" });
  const labels = h("input", { name: "labels", id: "run-labels", placeholder: "env=prod, role=db", value: labelsText(target.labels) || query.labels || "" });
  const cmd = h("textarea", { name: "cmd", id: "run-cmd", rows: 4, required: true, spellcheck: "false", placeholder: "uptime" }, preset.cmd || "");
  const timeout = h("input", { name: "timeout", id: "run-timeout", value: preset.timeout || "60s", size: 6 });
  const concurrency = h("input", { name: "concurrency", id: "run-concurrency", type: "number", min: 1, value: preset.concurrency || "", placeholder: "200" });
  const rate = h("input", { name: "rate", id: "run-rate", value: preset.rate || "", placeholder: t("unlimited") });
  const count = h("div", { id: "match-count", class: "small", "aria-live": "polite" });
  const error = h("p", { class: "error", id: "run-error", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit", id: "run-submit" }, t("Run"));

  function targetBody() {
    return { group: group.value || null, hosts: splitList(hosts.value), labels: parseLabels(labels.value) };
  }
  let lastCount = 0;
  let seq = 0;
  const refreshCount = debounce(async () => {
    const mine = ++seq;
    let body;
    try { body = targetBody(); } catch (err) { fill(count, h("span", { class: "error" }, err.message)); return; }
    if (!body.group && !body.hosts.length && !Object.keys(body.labels).length) {
      lastCount = 0;
      fill(count, h("span", { class: "muted" }, t("Choose a group, hosts or labels.")));
      return;
    }
    try {
      const r = await api("targets/resolve", { method: "POST", body });
      if (mine !== seq) return;
      lastCount = r.total;
      const names = r.items.slice(0, 12).map((x) => x.name).join(", ");
      fill(count, h("strong", { id: "match-number" }, String(r.total)), " ",
        t(r.total === 1 ? "host matches" : "hosts match"),
        r.total ? h("span", { class: "muted mono" }, `: ${names}${r.total > 12 ? ", …" : ""}`) : null);
    } catch (err) {
      if (mine !== seq) return;
      lastCount = 0;
      fill(count, h("span", { class: "error" }, err.message));
    }
  }, 250);
  for (const el of [group, hosts, labels]) { el.addEventListener("input", refreshCount); el.addEventListener("change", refreshCount); }

  const form = h("form", {
    class: "card", id: "run-form",
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = "";
      let body;
      try {
        body = { target: targetBody(), cmd: cmd.value, timeout: timeout.value || null };
      } catch (err) { error.textContent = err.message; return; }
      if (concurrency.value) body.concurrency = Number(concurrency.value);
      if (rate.value) body.rate = rate.value;
      submit.disabled = true;
      try {
        const task = await api("tasks", { method: "POST", body });
        if (task.approval) { // 202: the policy holds it for a second person
          fill(error, h("span", { class: "info", id: "run-held" }, task.message || t("Held for approval."), " ",
            h("a", { href: "#/approvals" }, t("Approvals"))));
          submit.disabled = false;
          return;
        }
        go(`#/tasks/${task.id}`);
      } catch (err) {
        error.textContent = err.message;
        submit.disabled = false;
      }
    },
  },
  h("h2", {}, t("Target")),
  h("div", { class: "form-grid" },
    h("label", { class: "field" }, t("Group"), group),
    h("label", { class: "field" }, t("Hosts (comma-separated)"), hosts),
    h("label", { class: "field" }, t("Labels (k=v, all must match)"), labels)),
  h("div", { class: "match-box" }, count),
  h("h2", {}, t("Command")),
  cmd,
  h("div", { class: "form-grid mt-10" },
    h("label", { class: "field" }, t("Timeout (e.g. 30s, 5m)"), timeout),
    h("label", { class: "field" }, t("Concurrency (hosts at once)"), concurrency),
    h("label", { class: "field" }, t("Rate (new connections, e.g. 20/s)"), rate)),
  h("div", { class: "row mt-12" }, submit, h("span", { class: "muted small" }, t("The output streams live on the next page."))),
  error);
  cmd.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  content.append(form);
  refreshCount();
  void lastCount;
}
