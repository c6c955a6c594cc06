// Hosts: the inventory with search and filters (group, label, latest status), bulk add by paste or
// file import (with the import report), edit, delete, groups and membership, and quick actions.
import { api } from "../api.js";
import { badge, clear, debounce, fill, fmtTime, h, labelsText, modal, parseLabels, splitList, toast } from "../dom.js";
import { st, t } from "../i18n.js";
import { pager } from "./shared.js";

const PAGE = 200;
const STATUSES = ["success", "failed", "timeout", "unreachable", "cancelled", "interrupted", "never"];
const FORMATS = ["yaml", "csv", "ini", "ansible-yaml", "ssh_config"];

export async function render({ title, content, query, setQuery, go }) {
  title.append(h("h1", {}, t("Hosts")));
  let groups = (await api("groups", { query: { limit: 1000 } })).items;
  const selected = new Set();
  let offset = 0;
  let rows = [];

  const search = h("input", { type: "search", id: "h-search", placeholder: t("search name, address, description"), value: query.search || "", size: 28 });
  const group = h("select", { id: "h-group" });
  const label = h("input", { id: "h-label", placeholder: "env=prod", value: query.label || "", size: 14 });
  const status = h("select", { id: "h-status" }, h("option", { value: "" }, t("any status")),
    STATUSES.map((s) => h("option", { value: s, selected: s === query.status }, st(s))));
  const error = h("p", { class: "error" });
  const body = h("tbody", { id: "hosts-body" });
  const foot = h("div");
  const bulk = h("div", { class: "toolbar", id: "bulk-bar", hidden: true });
  const checkAll = h("input", { type: "checkbox", "aria-label": t("select all"), onchange: (e) => {
    for (const r of rows) { if (e.target.checked) selected.add(r.name); else selected.delete(r.name); }
    paintRows(); paintBulk();
  } });

  function fillGroups() {
    fill(group, h("option", { value: "" }, t("any group")),
      groups.map((g) => h("option", { value: g.name, selected: g.name === (group.value || query.group) }, `${g.name} (${g.host_count})`)));
  }
  fillGroups();

  content.append(
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
      search, group, label, status, h("button", { type: "submit" }, t("Filter")),
      h("span", { class: "grow" }),
      h("button", { type: "button", id: "groups-btn", onclick: groupsDialog }, t("Groups")),
      h("button", { type: "button", class: "primary", id: "add-hosts", onclick: addDialog }, t("Add hosts"))),
    bulk, error,
    h("div", { class: "table-wrap" }, h("table", { id: "hosts-table" },
      h("thead", {}, h("tr", {}, h("th", {}, checkAll), [t("name"), t("address"), t("user"), t("groups"), t("labels"), t("latest"), ""].map((x) => h("th", {}, x)))),
      body)), foot);
  for (const el of [group, status]) el.addEventListener("change", () => { offset = 0; load(); });
  search.addEventListener("input", debounce(() => { offset = 0; load(); }, 300));

  let latestLoad = 0;
  async function load() {
    const mine = ++latestLoad;
    error.textContent = "";
    setQuery({ search: search.value, group: group.value, label: label.value, status: status.value });
    let page;
    try {
      const labels = label.value ? splitList(label.value) : undefined;
      page = await api("hosts", { query: { search: search.value, group: group.value, label: labels, status: status.value, limit: PAGE, offset } });
    } catch (err) { error.textContent = err.message; return; }
    const latest = page.items.length ? (await api("overview/host-status", { method: "POST", body: { hosts: page.items.map((x) => x.name) } })).hosts : {};
    if (mine !== latestLoad) return; // a newer search answered first
    rows = page.items.map((x) => ({ ...x, latest: latest[x.name] || { status: "never" } }));
    fill(body, rows.length ? rows.map(row) : h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("No hosts match."))));
    fill(foot, pager(offset, page.items.length, page.total, (at) => { offset = at; load(); }, { size: PAGE, id: "hosts-count" }));
    paintBulk();
  }

  function row(x) {
    const box = h("input", { type: "checkbox", checked: selected.has(x.name), "aria-label": x.name, onchange: (e) => {
      if (e.target.checked) selected.add(x.name); else selected.delete(x.name);
      tr.classList.toggle("selected", e.target.checked); paintBulk();
    } });
    const tr = h("tr", { class: selected.has(x.name) ? "selected" : null, "data-host": x.name },
      h("td", {}, box),
      h("td", { class: "mono" }, x.name, x.enabled ? null : [" ", badge("cancelled", t("disabled"))], x.description ? h("div", { class: "small muted" }, x.description) : null),
      h("td", { class: "mono small" }, x.port === 22 ? x.address : `${x.address}:${x.port}`),
      h("td", { class: "small" }, x.user || h("span", { class: "faint" }, t("(default)"))),
      h("td", {}, x.groups.map((g) => h("span", { class: "chip" }, g))),
      h("td", {}, Object.entries(x.labels).map(([k, v]) => h("span", { class: "chip label" }, `${k}=${v}`))),
      h("td", { class: "nowrap" }, badge(x.latest.status, st(x.latest.status)),
        x.latest.task_id ? [" ", h("a", { href: `#/tasks/${x.latest.task_id}`, class: "small", title: fmtTime(x.latest.at) }, `#${x.latest.task_id}`)] : null),
      h("td", { class: "nowrap" },
        h("button", { class: "small", onclick: () => editDialog(x) }, t("Edit")), " ",
        x.connector === "ssh" || x.connector === "local" ? h("button", { class: "small", onclick: () => go(`#/terminal/host/${encodeURIComponent(x.name)}`) }, t("Terminal")) : null));
    return tr;
  }
  function paintRows() {
    for (const tr of body.querySelectorAll("tr[data-host]")) {
      const on = selected.has(tr.dataset.host);
      tr.classList.toggle("selected", on);
      const cb = tr.querySelector("input[type=checkbox]");
      if (cb) cb.checked = on;
    }
  }

  function paintBulk() {
    bulk.hidden = selected.size === 0;
    if (!selected.size) return;
    const target = h("select", { id: "bulk-group" }, groups.map((g) => h("option", { value: g.name }, g.name)));
    const names = [...selected];
    fill(bulk, 
      h("strong", {}, t("{n} selected", { n: selected.size })),
      target,
      h("button", { class: "small", onclick: () => members(target.value, names, []) }, t("Add to group")),
      h("button", { class: "small", onclick: () => members(target.value, [], names) }, t("Remove from group")),
      h("span", { class: "sep" }),
      h("button", { class: "small", onclick: () => { sessionStorage.setItem("smallyi.rerun", JSON.stringify({ target: { hosts: names } })); go("#/run"); } }, t("Run on these")),
      h("button", { class: "small danger", onclick: () => removeHosts(names) }, t("Delete")),
      h("button", { class: "small link", onclick: () => { selected.clear(); paintRows(); paintBulk(); } }, t("Clear selection")));
  }

  async function members(name, add, remove) {
    if (!name) { toast(t("Create a group first."), true); return; }
    try {
      const r = await api(`groups/${encodeURIComponent(name)}/members`, { method: "POST", body: { add, remove } });
      toast(t("Group {g} now has {n} hosts", { g: name, n: r.total }));
      groups = (await api("groups", { query: { limit: 1000 } })).items; fillGroups(); await load();
    } catch (err) { toast(err.message, true); }
  }

  async function removeHosts(names) {
    if (!window.confirm(t("Delete {n} hosts from the inventory? Their archived results stay.", { n: names.length }))) return;
    for (const n of names) {
      try { await api(`hosts/${encodeURIComponent(n)}`, { method: "DELETE" }); selected.delete(n); } catch (err) { toast(`${n}: ${err.message}`, true); }
    }
    groups = (await api("groups", { query: { limit: 1000 } })).items; fillGroups(); await load();
  }

  // -- add: paste or file, checked first (dry run), then imported --------------------------------
  function addDialog() {
    const d = modal(t("Add hosts"), { wide: true });
    const format = h("select", { id: "import-format" }, h("option", { value: "" }, t("from the file name")), FORMATS.map((f) => h("option", { value: f }, f)));
    const text = h("textarea", { id: "import-text", rows: 12, spellcheck: "false", placeholder: "name,address,port,user,groups,labels\nweb-01,10.0.0.11,22,deploy,web,env=prod\nweb-02,10.0.0.12,22,deploy,web,env=prod" });
    const file = h("input", { type: "file", id: "import-file", accept: ".yaml,.yml,.csv,.ini,.cfg,.conf,hosts,config" });
    const extraGroup = h("input", { id: "import-group", placeholder: t("optional"), size: 14 });
    const report = h("div", { class: "report", id: "import-report" });
    let fileName = "";
    file.addEventListener("change", async () => {
      const f = file.files[0];
      if (!f) return;
      fileName = f.name;
      text.value = await f.text();
    });
    d.body.append(
      h("p", { class: "muted" }, t("Paste an inventory or choose a file: small-yi YAML, CSV with a header row, Ansible INI or YAML, or an ssh_config. Nothing is saved if any line is wrong.")),
      h("div", { class: "form-grid" },
        h("label", { class: "field" }, t("File"), file),
        h("label", { class: "field" }, t("Format"), format),
        h("label", { class: "field" }, t("Also put every host in group"), extraGroup)),
      h("div", { class: "mt-10" }, text), report);
    async function send(dryRun) {
      clear(report);
      const fmt = format.value || (fileName ? "" : "csv");
      try {
        const r = await api("hosts/import", {
          method: "POST", raw: text.value, headers: { "Content-Type": "text/plain" },
          query: { format: fmt || undefined, filename: fileName || undefined, group: extraGroup.value ? [extraGroup.value] : undefined, dry_run: dryRun ? "true" : undefined },
        });
        const c = r.counts;
        fill(report, h("p", { class: dryRun ? "info" : "notice", id: "import-summary" },
          (dryRun ? t("Check passed: would create {c}, update {u}, leave {n} unchanged.") : t("Imported: {c} created, {u} updated, {n} unchanged."))
            .replace("{c}", c.created).replace("{u}", c.updated).replace("{n}", c.unchanged)),
        ["created", "updated", "unchanged"].filter((k) => r[k].length).map((k) => h("div", { class: "names" }, `${t(k === "created" ? "new" : k)}: ${r[k].join(", ")}`)));
        if (!dryRun) { groups = (await api("groups", { query: { limit: 1000 } })).items; fillGroups(); await load(); }
      } catch (err) {
        fill(report, h("pre", { class: "error", id: "import-error" }, err.message));
      }
    }
    d.foot.append(h("button", { onclick: () => send(true), id: "import-check" }, t("Check")),
      h("button", { class: "primary", id: "import-go", onclick: () => send(false) }, t("Import")));
  }

  // -- edit one host -----------------------------------------------------------------------------
  function editDialog(x) {
    const d = modal(t("Edit host {name}", { name: x.name }));
    const f = {
      name: h("input", { value: x.name }), address: h("input", { value: x.address }),
      port: h("input", { type: "number", min: 1, max: 65535, value: x.port }), user: h("input", { value: x.user, placeholder: t("(default)") }),
      groups: h("input", { value: x.groups.join(", ") }), labels: h("input", { value: labelsText(x.labels) }),
      description: h("input", { value: x.description }), enabled: h("input", { type: "checkbox", checked: x.enabled }),
    };
    const err = h("p", { class: "error" });
    d.body.append(h("div", { class: "form-grid" },
      h("label", { class: "field" }, t("name"), f.name), h("label", { class: "field" }, t("address"), f.address),
      h("label", { class: "field" }, t("port"), f.port), h("label", { class: "field" }, t("user"), f.user),
      h("label", { class: "field span-all" }, t("groups"), f.groups), h("label", { class: "field span-all" }, t("labels"), f.labels),
      h("label", { class: "field span-all" }, t("description"), f.description), h("label", { class: "check" }, f.enabled, t("enabled"))), err);
    d.foot.append(
      h("button", { class: "danger", onclick: async () => { await removeHosts([x.name]); d.close(); } }, t("Delete")),
      h("span", { class: "grow" }),
      h("button", { onclick: () => d.close() }, t("Cancel")),
      h("button", { class: "primary", onclick: async () => {
        err.textContent = "";
        try {
          const body = { address: f.address.value, port: Number(f.port.value), user: f.user.value, groups: splitList(f.groups.value),
            labels: parseLabels(f.labels.value), description: f.description.value, enabled: f.enabled.checked };
          if (f.name.value !== x.name) body.name = f.name.value;
          await api(`hosts/${encodeURIComponent(x.name)}`, { method: "PATCH", body });
          d.close();
          groups = (await api("groups", { query: { limit: 1000 } })).items; fillGroups(); await load();
        } catch (e) { err.textContent = e.message; }
      } }, t("Save")));
  }

  // -- groups ------------------------------------------------------------------------------------
  function groupsDialog() {
    const d = modal(t("Groups"));
    const list = h("tbody");
    const name = h("input", { placeholder: t("new group name"), id: "new-group" });
    const desc = h("input", { placeholder: t("description") });
    const err = h("p", { class: "error" });
    async function refresh() {
      groups = (await api("groups", { query: { limit: 1000 } })).items;
      fillGroups();
      fill(list, groups.map((g) => h("tr", {},
        h("td", { class: "mono" }, h("a", { href: "#/hosts", onclick: (e) => { e.preventDefault(); d.close(); group.value = g.name; offset = 0; load(); } }, g.name)),
        h("td", { class: "num" }, String(g.host_count)), h("td", { class: "small muted" }, g.description),
        h("td", { class: "nowrap" },
          h("button", { class: "small", onclick: async () => {
            const to = window.prompt(t("Rename group {g} to:", { g: g.name }), g.name);
            if (!to || to === g.name) return;
            try { await api(`groups/${encodeURIComponent(g.name)}`, { method: "PATCH", body: { name: to } }); await refresh(); await load(); } catch (e) { err.textContent = e.message; }
          } }, t("Rename")), " ",
          h("button", { class: "small danger", onclick: async () => {
            if (!window.confirm(t("Delete group {g}? Its hosts stay in the inventory.", { g: g.name }))) return;
            try { await api(`groups/${encodeURIComponent(g.name)}`, { method: "DELETE" }); await refresh(); await load(); } catch (e) { err.textContent = e.message; }
          } }, t("Delete"))))));
    }
    d.body.append(h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, [t("group"), t("hosts"), t("description"), ""].map((x) => h("th", {}, x)))), list)),
      h("form", { class: "toolbar mt-10", onsubmit: async (e) => {
        e.preventDefault(); err.textContent = "";
        try { await api("groups", { method: "POST", body: { name: name.value, description: desc.value } }); name.value = ""; desc.value = ""; await refresh(); } catch (x) { err.textContent = x.message; }
      } }, name, desc, h("button", { class: "primary", type: "submit" }, t("Create group"))), err,
      h("p", { class: "small muted" }, t("To put hosts in a group, select them in the list and use Add to group.")));
    refresh();
  }

  await load();
}
