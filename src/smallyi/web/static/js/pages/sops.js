// SOPs: the stored SOPs with their last run, one SOP (its YAML, the plan, validate and save, run or
// dry-run it), and the list of runs. Saving validates first and shows every problem with its line.
import { api } from "../api.js";
import { badge, fill, fmtDuration, fmtTime, h, toast } from "../dom.js";
import { st, t } from "../i18n.js";
import { can, pager, targetInputs } from "./shared.js";

const RUN_STATUSES = ["running", "success", "failed", "cancelled", "interrupted"];
const PAGE = 50;
const EXAMPLE = `name: NAME
description: what it is for
steps:
  - id: check_disk
    type: exec
    cmd: "df -h | grep '/$'"
    timeout: 10
  - id: alert_if_full
    type: if
    condition: "{{ .output | contains '95%' }}"
    then: { action: "fail", message: "a disk is full" }
`;

function tabs(view, go) {
  return h("div", { class: "tabs" },
    h("button", { class: view === "sops" ? "active" : null, id: "tab-sops", onclick: () => go("#/sops") }, t("SOPs")),
    h("button", { class: view === "runs" ? "active" : null, id: "tab-runs", onclick: () => go("#/sop-runs") }, t("Runs")));
}

/** Where a SOP comes from: stored in the platform (editable here) or read from Git (edited in Git). */
export function origin(sop) {
  return sop.origin || "platform";
}

export async function render(ctx) {
  if (ctx.mode === "runs") return runsView(ctx);
  if (ctx.mode === "one") return sopView(ctx, ctx.params[0]);
  if (ctx.mode === "new") return sopView(ctx, null);
  return listView(ctx);
}

// -- the list -----------------------------------------------------------------------------------

async function listView({ title, content, session, go }) {
  title.append(h("h1", {}, t("SOPs")));
  const filter = h("input", { type: "search", id: "sop-filter", placeholder: t("filter by name") });
  const body = h("tbody", { id: "sops-body" });
  content.append(tabs("sops", go),
    h("div", { class: "toolbar" }, filter, h("span", { class: "grow" }),
      can(session, "sop.write") ? h("button", { class: "primary", id: "new-sop", onclick: () => go("#/sops/new") }, t("New SOP")) : null),
    h("div", { class: "table-wrap" }, h("table", { id: "sops-table" },
      h("thead", {}, h("tr", {}, [t("name"), t("description"), t("source"), t("version"), t("updated"), t("last run"), ""].map((x) => h("th", {}, x)))),
      body)));
  const page = await api("sops");
  function paint() {
    const q = filter.value.trim().toLowerCase();
    const items = page.items.filter((s) => !q || s.name.toLowerCase().includes(q));
    fill(body, items.length ? items.map((s) => h("tr", { "data-sop": s.name },
      h("td", { class: "mono nowrap" }, h("a", { href: `#/sops/${encodeURIComponent(s.name)}` }, s.name)),
      h("td", { class: "small ellipsis mw-360", title: s.description }, s.description),
      h("td", {}, h("span", { class: "chip", title: s.git ? `${s.git.repo} ${s.git.path}` : null }, t(origin(s)))),
      h("td", { class: "num" }, `v${s.version}`),
      h("td", { class: "small nowrap" }, `${fmtTime(s.updated_at)} · ${s.updated_by}`),
      h("td", { class: "nowrap", "data-last-run": s.last_run ? s.last_run.status : "" }, s.last_run ? [
        h("a", { href: `#/sop-runs/${s.last_run.id}`, class: "mono small" }, `#${s.last_run.id}`), " ",
        badge(s.last_run.status, st(s.last_run.status)), " ",
        h("span", { class: "small faint" }, fmtTime(s.last_run.started_at))] : h("span", { class: "faint small" }, t("never"))),
      h("td", { class: "nowrap" }, can(session, "sop.run")
        ? h("button", { class: "small", onclick: () => go(`#/sops/${encodeURIComponent(s.name)}?run=1`) }, t("Run…")) : null)))
      : h("tr", {}, h("td", { colspan: 7, class: "empty" }, page.items.length ? t("No SOPs match.") : t("No SOPs stored yet."))));
  }
  filter.addEventListener("input", paint);
  paint();
}

// -- one SOP: YAML, plan, validate and save, run --------------------------------------------------

function problemList(problems) {
  if (!problems || !problems.length) return null;
  return h("ul", { class: "problems", id: "sop-problems" }, problems.map((p) => h("li", { class: p.severity === "warning" ? "warn" : "bad" },
    h("span", { class: "mono" }, [p.line ? `${t("line")} ${p.line}` : null, p.step ? `${t("step")} ${p.step}` : null, p.field].filter(Boolean).join(" · ")),
    " ", p.severity === "warning" ? badge("interrupted", t("warning")) : null, " ", p.message)));
}

/** The DAG as waves: each wave's steps side by side, with what each does and what it waits for. */
export function planView(plan) {
  if (!plan) return h("p", { class: "muted" }, t("No plan: the SOP does not validate."));
  const byId = Object.fromEntries((plan.steps || []).map((s) => [s.id, s]));
  const handlers = (plan.steps || []).filter((s) => s.handler);
  const stepBox = (id) => {
    const s = byId[id] || { id, type: "", does: "" };
    return h("div", { class: "plan-step", "data-step": id },
      h("div", { class: "row" }, h("strong", { class: "mono" }, id), h("span", { class: "chip" }, s.type)),
      h("div", { class: "mono small does", title: s.does }, s.does),
      s.when ? h("div", { class: "small muted" }, `${t("when")} ${s.when}`) : null,
      (plan.needs[id] || []).length ? h("div", { class: "small faint" }, `${t("after")} ${plan.needs[id].join(", ")}`) : null);
  };
  return h("div", { class: "plan", id: "sop-plan" },
    plan.waves.map((wave, i) => h("div", { class: "wave" }, h("div", { class: "wave-no" }, t("wave {n}", { n: i + 1 })),
      h("div", { class: "wave-steps" }, wave.map(stepBox)))),
    handlers.length ? h("div", { class: "wave" }, h("div", { class: "wave-no" }, t("on failure")),
      h("div", { class: "wave-steps" }, handlers.map((s) => stepBox(s.id)))) : null);
}

async function sopView({ title, content, session, go, query }, name) {
  const sop = name ? await api(`sops/${encodeURIComponent(name)}`) : null;
  const editable = can(session, "sop.write") && (!sop || origin(sop) === "platform");
  title.append(h("h1", {}, name ? `${t("SOP")} ${name}` : t("New SOP")),
    ...(sop ? [h("span", { class: "chip" }, `v${sop.version}`), h("span", { class: "chip" }, t(origin(sop)))] : []));
  const nameInput = name ? null : h("input", { id: "sop-name", placeholder: t("name, e.g. disk-check"), required: true, maxlength: 128 });
  const yaml = h("textarea", { id: "sop-yaml", rows: 24, spellcheck: "false", readonly: editable ? null : true }, sop ? sop.source : EXAMPLE);
  const strict = h("input", { type: "checkbox", id: "sop-strict" });
  const verdict = h("div", { id: "sop-verdict", class: "small", "aria-live": "polite" });
  const problems = h("div", {}, sop ? problemList(sop.problems) : null);  // a stored SOP a newer rule refuses
  const planBox = h("div", {}, sop ? planView(sop.plan) : h("p", { class: "muted" }, t("Validate to see the plan.")));
  if (nameInput) nameInput.addEventListener("input", () => {
    if (yaml.value.startsWith("name: ")) yaml.value = yaml.value.replace(/^name: .*$/m, `name: ${nameInput.value || "NAME"}`);
  });

  async function validate() {
    const r = await api("sops/validate", { method: "POST", body: { source: yaml.value, strict: strict.checked } });
    const errors = r.problems.filter((p) => p.severity !== "warning").length;
    fill(verdict, r.valid ? h("span", { class: "ok" }, t("Valid: {n} steps in {w} waves.", { n: r.plan.steps.length, w: r.plan.waves.length }))
      : h("span", { class: "error" }, t("{n} errors: nothing is saved.", { n: errors })));
    verdict.dataset.valid = r.valid ? "1" : "0";
    fill(problems, problemList(r.problems));
    if (r.valid) fill(planBox, planView(r.plan));
    return r.valid;
  }
  async function save() {
    try {
      if (!(await validate())) return;
      const target = name || nameInput.value.trim();
      if (!target) { fill(verdict, h("span", { class: "error" }, t("Give the SOP a name."))); return; }
      const r = name ? await api(`sops/${encodeURIComponent(name)}`, { method: "PUT", body: { source: yaml.value, strict: strict.checked } })
        : await api("sops", { method: "POST", body: { name: target, source: yaml.value, strict: strict.checked } });
      toast(t("Saved {name} v{v}.", { name: r.name, v: r.version }));
      go(`#/sops/${encodeURIComponent(r.name)}`);
    } catch (err) { fill(verdict, h("span", { class: "error" }, err.message)); }
  }
  async function remove() {
    if (!window.confirm(t("Delete SOP {name}? Its runs stay in the history.", { name }))) return;
    try { await api(`sops/${encodeURIComponent(name)}`, { method: "DELETE" }); go("#/sops"); } catch (err) { toast(err.message, true); }
  }

  const editor = h("div", { class: "card" },
    h("div", { class: "row mb-8" }, h("h2", { class: "grow m-0" }, "YAML"), nameInput),
    !editable && sop ? h("p", { class: "info" }, origin(sop) === "platform" ? t("Read only: your role cannot change SOPs.")
      : [t("This SOP is read from Git: change it there."), sop.git ? h("span", { class: "mono" }, ` ${sop.git.repo} · ${sop.git.path} @ ${String(sop.git.commit || "").slice(0, 10)}`) : null]) : null,
    yaml,
    h("div", { class: "row mt-8" },
      h("button", { id: "sop-validate", onclick: () => validate().catch((err) => toast(err.message, true)) }, t("Validate")),
      editable ? h("button", { class: "primary", id: "sop-save", onclick: save }, t("Save")) : null,
      h("label", { class: "check small" }, strict, t("strict mode")),
      h("span", { class: "grow" }),
      sop && editable ? h("button", { class: "danger small", onclick: remove }, t("Delete")) : null),
    verdict, problems);
  yaml.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); (editable ? save : validate)(); } });

  const right = h("div", {}, h("div", { class: "card" }, h("h2", {}, t("Plan")), planBox));
  content.append(h("div", { class: "grid cols-2 sop-grid" }, editor, right));
  if (!sop) return;
  if (sop.description) editor.insertBefore(h("p", { class: "muted" }, sop.description), editor.children[1]);
  const meta = h("p", { class: "small muted" }, `${t("updated")} ${fmtTime(sop.updated_at)} ${t("by")} ${sop.updated_by} · ${t("created")} ${fmtTime(sop.created_at)} ${t("by")} ${sop.created_by}`);
  editor.append(meta);
  if (can(session, "sop.run")) right.append(await runCard(sop, go, query.run === "1"));
  right.append(await recentRuns(sop.name));
}

async function runCard(sop, go, focus) {
  const groups = await api("groups", { query: { limit: 1000 } });
  const env = h("select", { id: "run-env" }, h("option", { value: "" }, t("(none)")), sop.environments.map((e) => h("option", { value: e }, e)));
  const varInputs = Object.entries(sop.vars || {}).map(([k, v]) => {
    // null: a typed variable without a default, which the run must give (the server checks its type)
    const input = h("input", { "data-var": k, value: v == null ? "" : typeof v === "string" ? v : JSON.stringify(v) });
    return [k, input, v == null ? "string" : typeof v];
  });
  const target = targetInputs(groups.items, {}, "run");
  const error = h("p", { class: "error", id: "run-error" });
  const preview = h("div", { id: "dry-run" });
  function body(dry) {
    const vars = {};
    for (const [k, input, kind] of varInputs) {
      if (kind === "string") vars[k] = input.value;
      else { try { vars[k] = JSON.parse(input.value); } catch { vars[k] = input.value; } }
    }
    return { vars, environment: env.value, target: target.value(), dry_run: dry };
  }
  async function start(dry) {
    error.textContent = "";
    let b;
    try { b = body(dry); } catch (err) { error.textContent = err.message; return; }
    try {
      const r = await api(`sops/${encodeURIComponent(sop.name)}/runs`, { method: "POST", body: b });
      if (dry) fill(preview, dryRunView(r)); else go(`#/sop-runs/${r.id}`);
    } catch (err) { error.textContent = err.message; }
  }
  const card = h("div", { class: "card", id: "run-card" },
    h("h2", {}, t("Run")),
    h("div", { class: "form-grid" },
      h("label", { class: "field" }, t("Environment"), env),
      varInputs.map(([k, input]) => h("label", { class: "field" }, `vars.${k}`, input)),
      target.fields),
    h("p", { class: "small muted mt-6" }, t("The target is the default for steps that name none.")),
    h("div", { class: "row" },
      h("button", { class: "primary", id: "run-start", onclick: () => start(false) }, t("Run")),
      h("button", { id: "run-dry", onclick: () => start(true) }, t("Dry run"))),
    error, preview);
  if (focus) setTimeout(() => card.scrollIntoView({ block: "start" }), 0);
  return card;
}

/** What a dry run says: each step with its wave, hosts and the command it would run. */
function dryRunView(r) {
  const rows = [...r.steps, ...r.handlers].map((s) => h("tr", { "data-step": s.id },
    h("td", { class: "num" }, s.wave || t("on failure")), h("td", { class: "mono" }, s.id), h("td", {}, s.type),
    h("td", { class: "small nowrap", title: (s.hosts || []).join(", ") }, s.hosts ? (s.hosts.length ? t("{n} hosts", { n: s.hosts.length }) : "—") : ""),
    h("td", { class: "cmd", title: s.command || s.does }, s.command || s.does),
    h("td", { class: "small muted" }, s.note || "")));
  return h("div", { class: "dry-run" }, h("h3", {}, t("Dry run: nothing was run")),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, [t("wave"), t("step"), t("type"), t("hosts"), t("does"), ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows))));
}

async function recentRuns(name) {
  const page = await api("sop-runs", { query: { sop: name, limit: 10 } });
  return h("div", { class: "card", id: "sop-recent-runs" }, h("h2", {}, t("Recent runs")),
    page.items.length ? runTable(page.items) : h("p", { class: "muted" }, t("Not run yet.")),
    page.total > page.items.length ? h("a", { href: `#/sop-runs?sop=${encodeURIComponent(name)}` }, t("All {n} runs", { n: page.total })) : null);
}

function runTable(items, withSop = false) {
  return h("div", { class: "table-wrap" }, h("table", { class: "runs-table" },
    h("thead", {}, h("tr", {}, ["#", withSop ? t("SOP") : null, t("status"), t("steps"), t("trigger"), t("by"), t("environment"), t("started"), t("duration")]
      .filter((x) => x !== null).map((x) => h("th", {}, x)))),
    h("tbody", {}, items.map((r) => h("tr", { "data-run": r.id, "data-status": r.status },
      h("td", { class: "mono" }, h("a", { href: `#/sop-runs/${r.id}` }, String(r.id))),
      withSop ? h("td", { class: "mono" }, r.sop ? h("a", { href: `#/sops/${encodeURIComponent(r.sop)}` }, r.sop) : h("span", { class: "faint" }, t("inline"))) : null,
      h("td", {}, badge(r.status, st(r.status)), r.dry_run ? [" ", h("span", { class: "chip" }, t("dry run"))] : null),
      h("td", { class: "nowrap" }, Object.entries(r.counts || {}).map(([k, v]) => [badge(k, `${st(k)} ${v}`), " "])),
      h("td", { class: "small" }, r.trigger), h("td", { class: "small" }, r.started_by),
      h("td", { class: "small" }, r.environment || ""),
      h("td", { class: "small nowrap" }, fmtTime(r.started_at || r.created_at)),
      h("td", { class: "num small" }, fmtDuration(r.duration)))))));
}

// -- runs ---------------------------------------------------------------------------------------

async function runsView({ title, content, query, setQuery, go }) {
  title.append(h("h1", {}, t("SOP runs")));
  const status = h("select", { id: "runs-status" }, h("option", { value: "" }, t("any status")),
    RUN_STATUSES.map((s) => h("option", { value: s, selected: s === query.status }, st(s))));
  const sop = h("input", { id: "runs-sop", placeholder: t("SOP name"), value: query.sop || "", size: 16 });
  const by = h("input", { id: "runs-by", placeholder: t("started by"), value: query.started_by || "", size: 10 });
  const list = h("div", { id: "runs-list" });
  const error = h("p", { class: "error" });
  content.append(tabs("runs", go),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); load(0); } }, status, sop, by,
      h("button", { class: "primary", type: "submit" }, t("Search"))), error, list);
  status.addEventListener("change", () => load(0));
  let offset = 0;
  async function load(at) {
    offset = at;
    const q = { status: status.value, sop: sop.value.trim(), started_by: by.value.trim() };
    setQuery(q);
    let page;
    try { page = await api("sop-runs", { query: { ...q, limit: PAGE, offset } }); error.textContent = ""; }
    catch (err) { error.textContent = err.message; return; }
    fill(list, page.items.length ? runTable(page.items, true) : h("p", { class: "muted" }, t("No runs match.")),
      pager(offset, page.items.length, page.total, load, { size: PAGE }));
  }
  await load(0);
  const timer = setInterval(() => { if (!document.hidden) load(offset).catch(() => {}); }, 5000);
  return () => clearInterval(timer);
}
