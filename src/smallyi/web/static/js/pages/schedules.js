// Schedules: commands and stored SOPs on a cron (or @every) in a time zone. The list shows the next
// fire time in the schedule's own zone and the latest fire; create and edit in a dialog; pause,
// resume, delete; each schedule's fires (slot, status, task or run).
import { api } from "../api.js";
import { badge, fill, fmtTime, h, labelsText, modal, splitList, toast } from "../dom.js";
import { st, t } from "../i18n.js";
import { can, inZone, relative, targetInputs, targetText } from "./shared.js";

const MISSED = { skip: "skip missed slots", run_once: "run the latest once" };
const OVERLAP = { skip: "skip while running", allow: "allow overlap" };
const NOTIFY_ON = { failure: "on failure", success: "on success", finish: "on every finish" };
const PRESETS = ["*/15 * * * *", "0 * * * *", "0 3 * * *", "0 9 * * mon-fri", "@every 10m", "@hourly", "@daily"];

function zones() {
  try { return Intl.supportedValuesOf("timeZone"); } catch { return ["UTC", "Asia/Shanghai", "Europe/London", "America/New_York"]; }
}

function fireCell(f) {
  if (!f) return h("span", { class: "faint small" }, t("not fired yet"));
  const link = f.task_id ? h("a", { href: `#/tasks/${f.task_id}`, class: "mono small" }, `${t("task")} #${f.task_id}`)
    : f.run_id ? h("a", { href: `#/sop-runs/${f.run_id}`, class: "mono small" }, `${t("run")} #${f.run_id}`) : null;
  return h("div", { class: "nowrap", title: f.reason || "" }, h("div", {}, badge(f.status, st(f.status)), " ", link),
    h("div", { class: "small faint" }, fmtTime(f.slot)));
}

export async function render({ title, content, session }) {
  title.append(h("h1", {}, t("Schedules")));
  const writable = can(session, "schedules.write");
  const body = h("tbody", { id: "schedules-body" });
  const error = h("p", { class: "error" });
  content.append(
    h("div", { class: "toolbar" }, h("span", { class: "small muted" }, t("Each slot fires once, in the schedule's time zone; a running server checks every few seconds.")),
      h("span", { class: "grow" }),
      writable ? h("button", { class: "primary", id: "new-schedule", onclick: () => editor(null) }, t("New schedule")) : null),
    error,
    h("div", { class: "table-wrap" }, h("table", { id: "schedules-table" },
      h("thead", {}, h("tr", {}, [t("enabled · name"), t("when"), t("runs"), t("target"), t("next fire"), t("last result"), t("missed slots · overlap"), ""].map((x) => h("th", {}, x)))),
      body)));

  async function load() {
    const page = await api("schedules");
    error.textContent = "";
    fill(body, page.items.length ? page.items.map((s) => h("tr", { "data-schedule": s.name, "data-enabled": s.enabled ? "1" : "0" },
      h("td", {}, h("label", { class: "check mono nowrap" }, h("input", { type: "checkbox", checked: s.enabled, disabled: !writable, "aria-label": t("enabled"),
        title: s.enabled ? t("Pause") : t("Resume"), onchange: (e) => toggle(s, e.target.checked) }), s.name),
      s.description ? h("div", { class: "small muted ellipsis mw-200" }, s.description) : null,
      s.suspended ? h("div", { class: "small error mw-260", "data-suspended": "1" }, t("suspended: {why}", { why: s.suspended })) : null),
      h("td", { class: "nowrap" }, h("span", { class: "mono" }, s.cron), h("div", { class: "small faint" }, s.timezone)),
      h("td", { class: "cmd", title: s.command || s.sop_name }, s.kind === "sop"
        ? [h("span", { class: "chip" }, "SOP"), h("a", { href: `#/sops/${encodeURIComponent(s.sop_name)}` }, s.sop_name), s.environment ? ` · ${s.environment}` : ""]
        : s.command),
      h("td", { class: "small" }, targetText(s.target)),
      h("td", { class: "nowrap", "data-next": s.next_slot || "" }, s.next_slot
        ? [h("span", { class: "mono small" }, inZone(s.next_slot, s.timezone)), h("div", { class: "small faint" }, relative(s.next_slot))]
        : h("span", { class: "small faint" }, s.enabled ? "—" : t("paused"))),
      h("td", {}, fireCell(s.last_fire)),
      h("td", { class: "small" }, h("div", {}, t(MISSED[s.missed] || s.missed)), h("div", { class: "muted" }, t(OVERLAP[s.overlap] || s.overlap))),
      h("td", { class: "nowrap" },
        h("button", { class: "small", onclick: () => fires(s) }, t("Fires")),
        writable ? h("button", { class: "small", onclick: () => editor(s) }, t("Edit")) : null,
        writable ? h("button", { class: "small danger", onclick: () => remove(s) }, t("Delete")) : null)))
      : h("tr", {}, h("td", { colspan: 8, class: "empty" }, t("No schedules yet."))));
  }

  async function toggle(s, enabled) {
    try { await api(`schedules/${encodeURIComponent(s.name)}`, { method: "PATCH", body: { enabled } }); }
    catch (err) { toast(err.message, true); }
    await load();
  }
  async function remove(s) {
    if (!window.confirm(t("Delete schedule {name}? Its fires stay in the history of their tasks and runs.", { name: s.name }))) return;
    try { await api(`schedules/${encodeURIComponent(s.name)}`, { method: "DELETE" }); } catch (err) { toast(err.message, true); }
    await load();
  }

  async function fires(s) {
    const { body: b } = modal(t("Fires of {name}", { name: s.name }), { wide: true });
    const page = await api(`schedules/${encodeURIComponent(s.name)}/fires`, { query: { limit: 100 } });
    fill(b, page.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "fires-table" },
      h("thead", {}, h("tr", {}, [`${t("slot")} (${s.timezone})`, t("status"), t("task / run"), t("fired"), t("finished"), t("reason")].map((x) => h("th", {}, x)))),
      h("tbody", {}, page.items.map((f) => h("tr", {},
        h("td", { class: "mono small" }, inZone(f.slot, s.timezone)), h("td", {}, badge(f.status, st(f.status))),
        h("td", {}, f.task_id ? h("a", { href: `#/tasks/${f.task_id}` }, `${t("task")} #${f.task_id}`) : f.run_id ? h("a", { href: `#/sop-runs/${f.run_id}` }, `${t("run")} #${f.run_id}`) : ""),
        h("td", { class: "small" }, fmtTime(f.fired_at)), h("td", { class: "small" }, fmtTime(f.finished_at)), h("td", { class: "small" }, f.reason || ""))))))
      : h("p", { class: "muted" }, t("No fires yet.")), page.total > page.items.length ? h("p", { class: "small muted" }, t("the latest {n} of {total}", { n: page.items.length, total: page.total })) : null);
  }

  async function editor(s) {
    const [groups, sops] = await Promise.all([api("groups", { query: { limit: 1000 } }), api("sops").catch(() => ({ items: [] }))]);
    const { body: b, foot, close } = modal(s ? t("Edit schedule {name}", { name: s.name }) : t("New schedule"), { wide: true });
    const v = s || { kind: "command", cron: "*/15 * * * *", timezone: "", missed: "skip", overlap: "skip", enabled: true, target: {}, vars: {} };
    const name = h("input", { id: "sch-name", value: s ? s.name : "", disabled: Boolean(s), required: true, maxlength: 128, placeholder: "disk-check" });
    const description = h("input", { id: "sch-description", value: v.description || "" });
    const cron = h("input", { id: "sch-cron", value: v.cron, list: "sch-presets", class: "mono" });
    const presets = h("datalist", { id: "sch-presets" }, PRESETS.map((p) => h("option", { value: p })));
    const tz = h("input", { id: "sch-tz", value: v.timezone || "", list: "sch-zones", placeholder: t("server default (UTC)") });
    const zoneList = h("datalist", { id: "sch-zones" }, zones().map((z) => h("option", { value: z })));
    const kind = h("select", { id: "sch-kind" }, [["command", t("a command")], ["sop", t("a stored SOP")]].map(([k, l]) => h("option", { value: k, selected: k === v.kind }, l)));
    const command = h("textarea", { id: "sch-command", rows: 3, spellcheck: "false", placeholder: "df -h /" }, v.command || "");
    const timeout = h("input", { id: "sch-timeout", value: v.timeout != null ? `${v.timeout}s` : "", placeholder: "60s", size: 8 });
    const sopName = h("select", { id: "sch-sop" }, h("option", { value: "" }, "—"), sops.items.map((x) => h("option", { value: x.name, selected: x.name === v.sop_name }, x.name)));
    const env = h("input", { id: "sch-env", value: v.environment || "", placeholder: "prod" });
    const vars = h("input", { id: "sch-vars", value: labelsText(v.vars), placeholder: "service=nginx" });
    const target = targetInputs(groups.items, v.target || {}, "sch");
    const missed = h("select", { id: "sch-missed" }, ["skip", "run_once"].map((x) => h("option", { value: x, selected: x === v.missed }, t(MISSED[x]))));
    const overlap = h("select", { id: "sch-overlap" }, ["skip", "allow"].map((x) => h("option", { value: x, selected: x === v.overlap }, t(OVERLAP[x]))));
    const enabled = h("input", { type: "checkbox", id: "sch-enabled", checked: v.enabled });
    const channels = h("input", { id: "sch-channels", value: v.notify ? (v.notify.channels || []).join(", ") : "", placeholder: "ops" });
    const on = h("select", { id: "sch-notify-on" }, ["failure", "success", "finish"].map((x) => h("option", { value: x, selected: v.notify && (v.notify.on || [])[0] === x }, t(NOTIFY_ON[x]))));
    const error = h("p", { class: "error", id: "sch-error", role: "alert" });
    const commandPart = h("div", { class: "form-grid" }, h("label", { class: "field span-all" }, t("Command"), command), h("label", { class: "field" }, t("Timeout (e.g. 30s, 5m)"), timeout));
    const sopPart = h("div", { class: "form-grid" }, h("label", { class: "field" }, "SOP", sopName), h("label", { class: "field" }, t("Environment"), env),
      h("label", { class: "field" }, t("Variables (k=v)"), vars));
    const showKind = () => { commandPart.hidden = kind.value !== "command"; sopPart.hidden = kind.value !== "sop"; };
    kind.addEventListener("change", showKind);
    showKind();
    if (s) kind.disabled = true;
    fill(b,
      h("div", { class: "form-grid" },
        h("label", { class: "field" }, t("Name"), name), h("label", { class: "field" }, t("Description"), description),
        h("label", { class: "field" }, t("When (cron or @every)"), cron, presets), h("label", { class: "field" }, t("Time zone"), tz, zoneList),
        h("label", { class: "field" }, t("Runs"), kind)),
      h("p", { class: "small muted cron-help" }, t("Five fields: minute hour day-of-month month day-of-week, e.g. */15 * * * * or 0 3 * * mon-fri; or @every 10m, @hourly, @daily.")),
      commandPart, sopPart,
      h("h3", { class: "mt-12" }, t("Target")), h("div", { class: "form-grid" }, target.fields),
      h("div", { class: "form-grid mt-12" },
        h("label", { class: "field" }, t("Missed slots"), missed), h("label", { class: "field" }, t("Overlap"), overlap),
        h("label", { class: "field" }, t("Notify channels"), channels), h("label", { class: "field" }, t("Notify on"), on),
        h("label", { class: "check self-end" }, enabled, t("enabled"))),
      error);
    const save = h("button", { class: "primary", id: "sch-save", onclick: submit }, t("Save"));
    foot.append(h("button", { onclick: close }, t("Cancel")), save);

    async function submit() {
      error.textContent = "";
      const out = { description: description.value, cron: cron.value.trim(), missed: missed.value, overlap: overlap.value, enabled: enabled.checked };
      if (tz.value.trim()) out.timezone = tz.value.trim();
      try {
        const tg = target.value();
        if (tg || s) out.target = tg || {};
        if (kind.value === "command") {
          out.command = command.value;
          out.timeout = timeout.value.trim() || null;
        } else {
          out.sop_name = sopName.value;
          out.environment = env.value.trim();
          const parsed = {};
          for (const item of splitList(vars.value)) {
            const i = item.indexOf("=");
            if (i <= 0) throw new Error(t("{item} is not k=v", { item }));
            parsed[item.slice(0, i)] = item.slice(i + 1);
          }
          out.vars = parsed;
        }
      } catch (err) { error.textContent = err.message; return; }
      const chans = splitList(channels.value);
      if (chans.length) out.notify = { channels: chans, on: [on.value] };
      save.disabled = true;
      try {
        if (s) await api(`schedules/${encodeURIComponent(s.name)}`, { method: "PATCH", body: out });
        else await api("schedules", { method: "POST", body: { ...out, name: name.value.trim(), kind: kind.value } });
        close();
        toast(t("Schedule saved."));
        await load();
      } catch (err) {
        error.textContent = err.field ? `${err.field}: ${err.message}` : err.message;
        save.disabled = false;
      }
    }
  }

  await load();
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog")) load().catch(() => {}); }, 10000);
  return () => clearInterval(timer);
}
