"""Reading one step's fields for the validator: each type's own fields, checked. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from smallyi.sop import checks
from smallyi.sop.expr import Template
from smallyi.sop.model import ACTIONS, OnFailure
from smallyi.sop.yamlsrc import Path

if TYPE_CHECKING:
    from smallyi.sop.validate import _Validator


class StepFields:
    """Reads one step's fields, recording problems against its line, step id and field name."""

    def __init__(self, v: _Validator, raw: dict[str, Any], path: Path, label: str) -> None:
        self.v, self.raw, self.path, self.label = v, raw, path, label

    def at(self, key: str) -> Path:
        return (*self.path, key)

    def err(self, msg: str, key: str) -> None:
        self.v.error(msg, self.at(key), step=self.label, field=key)

    def get(self, fn: Any, key: str, **kw: Any) -> Any:
        if key not in self.raw:
            return None
        return self.v.check(fn, self.raw[key], self.at(key), step=self.label, field=key, **kw)

    def opt_text(self, key: str) -> str | None:
        return self.get(checks.text, key)  # type: ignore[no-any-return]

    def duration(self, key: str) -> float | None:
        return self.get(checks.duration, key)  # type: ignore[no-any-return]

    def whole(self, key: str, low: int, high: int) -> int | None:
        return self.get(checks.integer, key, low=low, high=high)  # type: ignore[no-any-return]

    def template(self, key: str, *, bare: bool = False, itself: bool = False) -> Template | None:
        if key not in self.raw:
            return None
        return self.v.template(self.raw[key], self.at(key), step=self.label, field=key, bare=bare, itself=itself)

    def needs(self, ids: Mapping[str, int]) -> list[str] | None:
        if "needs" not in self.raw:
            return None
        value = self.raw["needs"]
        if value is None:
            return []
        names = self.v.check(checks.text_list, value, self.at("needs"), step=self.label, field="needs")
        if names is None:
            return []
        for n in names:
            if n == self.raw.get("id"):
                self.err("a step cannot need itself", "needs")
            elif n not in ids:
                self.err(f"needs {n!r}, which is not a step of this SOP{checks.suggest(n, list(ids))}", "needs")
        return [n for n in names if n in ids and n != self.raw.get("id")]

    def on_failure(self, ids: Mapping[str, int]) -> OnFailure:
        value = self.raw.get("on_failure", "stop")
        if value in ("stop", "continue"):
            return OnFailure(value)
        if isinstance(value, dict) and set(value) == {"run"} and isinstance(value["run"], str):
            target = value["run"]
            if target not in ids:
                self.err(f"runs {target!r}, which is not a step of this SOP{checks.suggest(target, list(ids))}",
                         "on_failure")
                return OnFailure()
            return OnFailure("run", target)
        self.err(f"expected stop, continue or {{run: STEP_ID}}, got {value!r}", "on_failure")
        return OnFailure()

    def outputs(self) -> dict[str, str]:
        if "outputs" not in self.raw:
            return {}
        value = self.raw["outputs"]
        if not isinstance(value, dict):
            self.err(f"expected a mapping of name: expression, got {checks.kind(value)}", "outputs")
            return {}
        out = {}
        for name, expr in value.items():
            if not checks.ID_RE.match(name):
                self.v.error(f"{name!r} is not a name (letters, digits, '_')", (*self.at("outputs"), name),
                             step=self.label, field=f"outputs.{name}")
                continue
            if self.v.template(expr, (*self.at("outputs"), name), step=self.label, field=f"outputs.{name}",
                               bare=True, itself=True) is not None:
                out[name] = expr
        return out

    # -- each type's own fields ----------------------------------------------------------------

    def params(self, stype: str) -> dict[str, Any]:
        p: dict[str, Any] = {}
        r = self.raw
        if stype == "exec":
            if self.get(checks.command, "cmd") is not None and self.template("cmd"):
                p["cmd"] = r["cmd"]
                self.v.shell(r["cmd"], self.at("cmd"), step=self.label, field="cmd")
        elif stype == "script":
            interp = self.get(checks.text, "interpreter")
            if interp is not None and not checks.INTERPRETER_RE.match(interp):
                self.err(f"{interp!r} is not a program with simple flags (e.g. bash, /usr/bin/env python3)",
                         "interpreter")
            p["interpreter"] = interp or "sh"
            if self.get(checks.command, "script", what="the script") is not None and self.template("script"):
                p["script"] = r["script"]
                self.v.shell(r["script"], self.at("script"), step=self.label, field="script",
                             interpreter=p["interpreter"])
            args = self.get(checks.text_list, "args", allow_string=False) or []
            for a in args:
                if self.v.check(checks.command, a, self.at("args"), step=self.label, field="args",
                                what="an argument") is not None:
                    self.v.template(a, self.at("args"), step=self.label, field="args")
            p["args"] = args
        elif stype in ("template", "file"):
            dest = self.get(checks.abs_path, "dest")
            if dest is not None and self.template("dest"):
                p["dest"] = dest
            content = self.get(checks.text, "content", empty=True)
            if content is not None and (stype == "file" or self.template("content")):
                p["content"] = content
            if "mode" in r:
                p["mode"] = self.get(checks.mode, "mode")
            if "owner" in r:
                p["owner"] = self.get(checks.owner, "owner")
        elif stype == "http":
            p.update(self.http())
        elif stype == "wait":
            p["duration"] = self.duration("duration")
        elif stype == "approval":
            if self.template("message"):
                p["message"] = r["message"]
            p["approvers"] = self.get(checks.text_list, "approvers") or []
        elif stype == "notify":
            p["channels"] = self.v.channels(r, self.path, step=self.label, field="channels")
            for key in ("message", "title"):
                if self.template(key):
                    p[key] = r[key]
        elif stype == "ticket":
            p.update(self.ticket(r, self.path, ""))
        elif stype == "sop":
            name = self.get(checks.text, "sop")
            known = self.v.knowns.sops
            if name is not None:
                p["sop"] = name
                if known is not None and name not in known:
                    self.v.unknown(f"no stored SOP named {name!r}{checks.suggest(name, known)}", self.at("sop"),
                                   step=self.label, field="sop")
            if "vars" in r:
                p["vars"] = self.v.mapping(r["vars"], self.at("vars"), field="vars", ids=True)
                self.v.templates_in(p["vars"], self.at("vars"), step=self.label, field="vars")
        elif stype == "if":
            self.template("condition", bare=True)
            p["condition"] = r.get("condition")
            p["then"] = self.actions("then")
            p["else"] = self.actions("else")
        if "concurrency" in r:
            p["concurrency"] = self.whole("concurrency", 1, 100_000)
        return p

    def http(self) -> dict[str, Any]:
        r, p = self.raw, {}
        if self.get(checks.text, "url") is not None and self.template("url"):
            p["url"] = r["url"]
        method = str(r.get("method", "GET")).upper()
        if method not in checks.HTTP_METHODS:
            self.err(f"unknown method {r.get('method')!r}; one of {', '.join(checks.HTTP_METHODS)}", "method")
        p["method"] = method
        headers = self.get(checks.text_map, "headers") or {}
        self.v.templates_in(headers, self.at("headers"), step=self.label, field="headers")
        p["headers"] = headers
        if "body" in r and "json" in r:
            self.err("give body (text) or json (a structure), not both", "json")
        if "body" in r and self.get(checks.text, "body", empty=True) is not None and self.template("body"):
            p["body"] = r["body"]
        if "json" in r:
            self.v.templates_in(r["json"], self.at("json"), step=self.label, field="json")
            p["json"] = r["json"]
        p["expect_status"] = self.get(checks.status_codes, "expect_status") or ()
        return p

    def ticket(self, r: dict[str, Any], path: Path, prefix: str) -> dict[str, Any]:
        """A ticket's fields (a ticket step's, or a create_ticket action's under ``prefix``)."""
        p: dict[str, Any] = {}
        key = "template"
        name = self.v.check(checks.text, r.get(key), (*path, key), step=self.label, field=prefix + key) \
            if key in r else None
        known = self.v.knowns.ticket_templates
        if name is not None:
            p["template"] = name
            if known is not None and name not in known:
                self.v.unknown(f"no ticket template named {name!r} in the config (tickets.templates)"
                               f"{checks.suggest(name, known)}", (*path, key), step=self.label, field=prefix + key)
        for k in ("title", "sla"):
            if k in r and self.v.template(r[k], (*path, k), step=self.label, field=prefix + k):
                p[k] = r[k]
        if "hosts" in r:
            hosts = self.v.check(checks.text_list, r["hosts"], (*path, "hosts"), step=self.label,
                                 field=prefix + "hosts")
            for h in hosts or []:
                self.v.template(h, (*path, "hosts"), step=self.label, field=prefix + "hosts")
            p["hosts"] = hosts or []
        if "fields" in r:
            fields = self.v.mapping(r["fields"], (*path, "fields"), field=prefix + "fields")
            self.v.templates_in(fields, (*path, "fields"), step=self.label, field=prefix + "fields")
            p["fields"] = fields
        return p

    def actions(self, key: str) -> list[dict[str, Any]]:
        if key not in self.raw:
            return []
        value = self.raw[key]
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            path: Path = (*self.at(key), i) if isinstance(value, list) else self.at(key)
            if not isinstance(item, dict) or not isinstance(item.get("action"), str):
                self.v.error(f"expected an action such as {{action: create_ticket, template: NAME}}, got "
                             f"{checks.kind(item)}", path, step=self.label, field=key)
                continue
            action = item["action"]
            spec = ACTIONS.get(action)
            if spec is None:
                self.v.error(f"unknown action {action!r}{checks.suggest(action, list(ACTIONS))}; one of "
                             + ", ".join(ACTIONS), (*path, "action"), step=self.label, field=f"{key}.action")
                continue
            for k in item:
                if k != "action" and k not in spec:
                    self.v.unknown(f"unknown field {k!r} for action {action}", (*path, k), step=self.label,
                                   field=f"{key}.{k}")
            for k, required in spec.items():
                if required and k not in item:
                    self.v.error(f"action {action} needs {k!r}", path, step=self.label, field=f"{key}.{k}")
            if action == "create_ticket":
                out.append({"action": action, **self.ticket(item, path, f"{key}.")})
            elif action == "notify":
                parsed = {"action": action, "channels": self.v.channels(item, path, step=self.label, field=key)}
                for k in ("message", "title"):
                    if k in item and self.v.template(item[k], (*path, k), step=self.label, field=f"{key}.{k}"):
                        parsed[k] = item[k]
                out.append(parsed)
            else:
                msg = item.get("message", "")
                if msg:
                    self.v.template(msg, (*path, "message"), step=self.label, field=f"{key}.message")
                out.append({"action": action, "message": msg})
        return out
