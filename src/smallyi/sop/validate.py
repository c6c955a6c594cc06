"""YAML text → a checked :class:`~smallyi.sop.model.Sop`, or every problem with its line. Pure.

``parse_sop`` never stops at the first mistake: it reports each one with the step id, the field and
the line. Strict mode (``--strict-mode``) also turns unknown fields and undefined variables into
errors (they are warnings otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallyi.sop import checks, dag, refs, shellbind, variables
from smallyi.sop.checks import Bad
from smallyi.sop.expr import ExprError, Template, compile_template
from smallyi.sop.model import (
    COMMON_FIELDS,
    NOTIFY_EVENTS,
    STEP_TYPES,
    TOP_FIELDS,
    TYPE_FIELDS,
    NotifySpec,
    Sop,
    Step,
)
from smallyi.sop.problems import Problem, SopInvalid
from smallyi.sop.stepfields import StepFields
from smallyi.sop.yamlsrc import Located, Path, YamlProblem, load

__all__ = ["Knowns", "Problem", "SopInvalid", "load_sop", "parse_sop"]


@dataclass(frozen=True, slots=True)
class Knowns:
    """Names known outside the file; None means "not known here", so not checked."""

    ticket_templates: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    sops: frozenset[str] | None = None
    #: environments configured for the platform (``sop.environments`` in the config)
    environments: Mapping[str, Mapping[str, Any]] | None = None


def load_sop(text: str, *, source: str = "sop.yaml", strict: bool = False, knowns: Knowns | None = None,
             ) -> tuple[Sop, list[Problem]]:
    """The SOP and its warnings; SopInvalid listing every problem if there is any error."""
    sop, problems = parse_sop(text, source=source, strict=strict, knowns=knowns)
    if sop is None or any(not p.warning for p in problems):
        raise SopInvalid(source, problems)
    return sop, problems


def parse_sop(text: str, *, source: str = "sop.yaml", strict: bool = False, knowns: Knowns | None = None,
              ) -> tuple[Sop | None, list[Problem]]:
    try:
        located = load(text)
    except YamlProblem as exc:
        return None, [Problem(exc.message, exc.line)]
    v = _Validator(located, strict=strict, knowns=knowns or Knowns())
    sop = v.run()
    return sop, sorted(v.problems, key=lambda p: (p.line or 0, p.warning))


class _Validator:
    def __init__(self, loc: Located, *, strict: bool, knowns: Knowns) -> None:
        self.loc = loc
        self.strict = strict
        self.knowns = knowns
        self.problems: list[Problem] = []
        #: every compiled template: (step id or None, field, path, template, evaluated against itself)
        self.templates: list[refs.Use] = []
        self.cyclic = False
        #: the SOP's variables, read before its steps (commands are checked against their types)
        self.decls: dict[str, variables.VarDecl] = {}

    # -- reporting ----------------------------------------------------------------------------

    def error(self, msg: str, path: Path, *, step: str | None = None, field: str | None = None,
              warning: bool = False) -> None:
        self.problems.append(Problem(msg, self.loc.line(*path), step, field, warning))

    def unknown(self, msg: str, path: Path, *, step: str | None = None, field: str | None = None) -> None:
        """Unknown names: errors in strict mode, warnings otherwise."""
        self.error(msg, path, step=step, field=field, warning=not self.strict)

    def check(self, fn: Any, value: Any, path: Path, *, step: str | None, field: str, **kw: Any) -> Any:
        """``fn(value)``, or None after recording the problem it raised."""
        try:
            return fn(value, **kw)
        except Bad as exc:
            self.error(str(exc), path, step=step, field=field)
            return None

    def template(self, value: Any, path: Path, *, step: str | None, field: str, bare: bool = False,
                 itself: bool = False) -> Template | None:
        if not isinstance(value, str):
            self.error(f"expected text, got {checks.kind(value)}", path, step=step, field=field)
            return None
        try:
            tpl = compile_template(value, bare=bare)
        except ExprError as exc:
            self.error(f"expression error at column {exc.pos + 1}: {exc.message}", path, step=step, field=field)
            return None
        self.templates.append(refs.Use(step, field, path, tpl, itself))
        return tpl

    def templates_in(self, value: Any, path: Path, *, step: str | None, field: str) -> None:
        """Check every string inside a structure (headers, JSON bodies, vars passed on)."""
        if isinstance(value, str):
            self.template(value, path, step=step, field=field)
        elif isinstance(value, dict):
            for k, v in value.items():
                self.templates_in(v, (*path, k), step=step, field=f"{field}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.templates_in(v, (*path, i), step=step, field=f"{field}[{i + 1}]")

    # -- the document ---------------------------------------------------------------------------

    def run(self) -> Sop | None:
        data = self.loc.data
        if not isinstance(data, dict):
            self.error("a SOP is a mapping with a 'steps:' list at the top" if data is not None
                       else "the file is empty; a SOP needs a 'steps:' list", ())
            return None
        for key in data:
            if key not in TOP_FIELDS:
                self.unknown(f"unknown field {key!r}{checks.suggest(key, TOP_FIELDS)}", (key,), field=key)
        name = data.get("name", "")
        if name and (not isinstance(name, str) or not checks.NAME_RE.match(name)):
            self.error(f"{name!r} is not a name: letters, digits, '.', '_' and '-'", ("name",), field="name")
            name = ""
        description = data.get("description", "")
        if not isinstance(description, str):
            self.error("expected text", ("description",), field="description")
        sop_vars = self.variables(data.get("vars", {}))
        envs = self.environments(data.get("environments", {}))
        target = self.target(data["target"], ("target",), step=None) if "target" in data else None
        timeout = self.check(checks.duration, data["timeout"], ("timeout",), step=None, field="timeout") \
            if "timeout" in data else None
        notify = self.notify(data["notify"]) if "notify" in data else None
        raw_steps = data.get("steps")
        if raw_steps is None:
            self.error("the SOP has no 'steps:' list", (), field="steps")
            return None
        if not isinstance(raw_steps, list) or not raw_steps:
            self.error("'steps:' must be a non-empty list of steps", ("steps",), field="steps")
            return None
        ids = self.collect_ids(raw_steps)
        steps = [s for i, raw in enumerate(raw_steps) if (s := self.step(raw, i, ids)) is not None]
        handlers = self.handlers(steps)
        steps = self.link(steps, handlers)
        sop = Sop(steps=tuple(steps), name=name, description=description if isinstance(description, str) else "",
                  vars=sop_vars, var_decls=dict(self.decls), environments=envs, target=target, timeout=timeout, notify=notify,
                  handlers=frozenset(handlers))
        if len(steps) == len(raw_steps) and not self.cyclic:
            for p in refs.check(sop, self.templates, knowns_envs=self.knowns.environments):
                self.unknown(p.message, p.path, step=p.step, field=p.field)
        return sop

    def mapping(self, value: Any, path: Path, *, field: str, ids: bool = False) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.error(f"expected a mapping, got {checks.kind(value)}", path, field=field)
            return {}
        if ids:
            for k in value:
                if not checks.ID_RE.match(k):
                    self.error(f"{k!r} is not a variable name: letters, digits and '_', not starting with a digit",
                               (*path, k), field=f"{field}.{k}")
        return dict(value)

    def variables(self, value: Any) -> dict[str, Any]:
        """``vars:``: each a default or a declaration (``{type: int, ...}``); the defaults by name."""
        raw = self.mapping(value, ("vars",), field="vars", ids=True)
        for name, item in raw.items():
            decl, problems = variables.parse(str(name), item)
            for key, message in problems:
                where = ("vars", name, key) if isinstance(item, dict) and key in item else ("vars", name)
                self.error(message, where, field=f"vars.{name}.{key}")
            self.decls[str(name)] = decl
        return {name: decl.default for name, decl in self.decls.items()}

    def shell(self, text: Any, path: Path, *, step: str, field: str, interpreter: str = "sh") -> None:
        """A command or script: where its values land (refused as code or as numbers; raw; '...')."""
        if not isinstance(text, str):
            return
        try:
            tpl = shellbind.compile_shell(text, self.decls, interpreter=interpreter)
        except ExprError:
            return  # reported with the template
        for issue in tpl.problems():
            self.error(issue.message, path, step=step, field=field, warning=issue.warning)

    def environments(self, value: Any) -> dict[str, dict[str, Any]]:
        envs = self.mapping(value, ("environments",), field="environments")
        out: dict[str, dict[str, Any]] = {}
        for env, values in envs.items():
            out[env] = self.mapping(values, ("environments", env), field=f"environments.{env}", ids=True)
        return out

    def notify(self, value: Any) -> NotifySpec | None:
        path: Path = ("notify",)
        if not isinstance(value, dict):
            self.error(f"expected a mapping with channels and on, got {checks.kind(value)}", path, field="notify")
            return None
        for key in value:
            if key not in ("channels", "channel", "on", "message"):
                self.unknown(f"unknown field {key!r}", (*path, key), field=f"notify.{key}")
        channels = self.channels(value, path, step=None, field="notify")
        on = self.check(checks.text_list, value.get("on", ["failure"]), (*path, "on"), step=None, field="notify.on")
        for event in on or []:
            if event not in NOTIFY_EVENTS:
                self.error(f"unknown event {event!r}; one of {', '.join(NOTIFY_EVENTS)}", (*path, "on"),
                           field="notify.on")
        message = value.get("message")
        if message is not None:
            self.template(message, (*path, "message"), step=None, field="notify.message")
        return NotifySpec(tuple(channels), tuple(on or ("failure",)), message if isinstance(message, str) else None)

    def channels(self, value: dict[str, Any], path: Path, *, step: str | None, field: str) -> list[str]:
        raw = value.get("channels", value.get("channel"))
        if raw is None:
            self.error("name a channel (channel: NAME) or several (channels: [A, B])", path, step=step,
                       field=f"{field}.channels" if step is None else "channels")
            return []
        names = self.check(checks.text_list, raw, (*path, "channels" if "channels" in value else "channel"),
                           step=step, field="channels") or []
        known = self.knowns.channels
        for n in names:
            if known is not None and n not in known:
                self.unknown(f"no notification channel named {n!r}{checks.suggest(n, known)}", path, step=step,
                             field="channels")
        return names

    def collect_ids(self, raw_steps: list[Any]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for i, raw in enumerate(raw_steps):
            if not isinstance(raw, dict):
                continue
            sid = raw.get("id")
            if isinstance(sid, str) and sid in ids:
                self.error(f"id {sid!r} is used twice (first by step {ids[sid] + 1}, line "
                           f"{self.loc.line('steps', ids[sid])})", ("steps", i, "id"), step=sid, field="id")
            elif isinstance(sid, str):
                ids[sid] = i
        return ids

    # -- one step -------------------------------------------------------------------------------

    def step(self, raw: Any, i: int, ids: Mapping[str, int]) -> Step | None:
        path: Path = ("steps", i)
        if not isinstance(raw, dict):
            self.error(f"step {i + 1} must be a mapping with id and type, got {checks.kind(raw)}", path)
            return None
        sid = raw.get("id")
        if sid is None:
            self.error(f"step {i + 1} has no id", path, field="id")
            sid_ok = False
        elif not isinstance(sid, str) or not checks.ID_RE.match(sid):
            self.error(f"{sid!r} is not a step id: letters, digits and '_', not starting with a digit "
                       "(ids are read as .steps.<id> in expressions)", (*path, "id"), field="id")
            sid_ok = False
        else:
            sid_ok = True
        label = str(sid) if sid_ok else f"#{i + 1}"
        stype = raw.get("type")
        if stype is None:
            self.error("has no type; one of " + ", ".join(STEP_TYPES), path, step=label, field="type")
            return None
        if stype not in STEP_TYPES:
            self.error(f"unknown type {stype!r}{checks.suggest(str(stype), STEP_TYPES)}; one of "
                       + ", ".join(STEP_TYPES), (*path, "type"), step=label, field="type")
            return None
        own = TYPE_FIELDS[stype]
        for key in raw:
            if key not in COMMON_FIELDS and key not in own:
                self.unknown(f"unknown field {key!r} for type {stype}"
                             f"{checks.suggest(key, list(COMMON_FIELDS | own.keys()))}", (*path, key),
                             step=label, field=key)
        for key, required in own.items():
            if required and key not in raw:
                self.error(f"type {stype} needs field {key!r}", path, step=label, field=key)
        s = StepFields(self, raw, path, label)
        params = s.params(stype)
        if not sid_ok or ids.get(label) != i:
            return None
        needs = s.needs(ids)
        return Step(
            id=label, type=stype, line=self.loc.line(*path) or 0, name=s.opt_text("name") or "",
            needs=tuple(needs or ()), explicit_needs=needs is not None,
            when=raw["when"] if s.template("when", bare=True) else None,
            target=self.target(raw["target"], (*path, "target"), step=label) if "target" in raw else None,
            timeout=s.duration("timeout"), retries=s.whole("retries", 0, checks.MAX_RETRIES) or 0,
            retry_delay=s.duration("retry_delay") or 0.0, on_failure=s.on_failure(ids),
            outputs=s.outputs(), params=params,
        )

    def target(self, value: Any, path: Path, *, step: str | None) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(f"expected a mapping of group, hosts and labels, got {checks.kind(value)}", path,
                       step=step, field="target")
            return None
        out: dict[str, Any] = {}
        for key, v in value.items():
            field = f"target.{key}"
            if key == "group":
                if self.check(checks.text, v, (*path, key), step=step, field=field) is not None:
                    out["group"] = v
                    self.template(v, (*path, key), step=step, field=field)
            elif key == "hosts":
                hosts = self.check(checks.text_list, v, (*path, key), step=step, field=field)
                if hosts is not None:
                    out["hosts"] = hosts
                    for h in hosts:
                        self.template(h, (*path, key), step=step, field=field)
            elif key == "labels":
                labels = self.check(checks.text_map, v, (*path, key), step=step, field=field)
                if labels is not None:
                    out["labels"] = labels
                    self.templates_in(labels, (*path, key), step=step, field=field)
            else:
                self.error(f"unknown field {key!r}; a target has group, hosts and labels", (*path, key), step=step,
                           field=field)
        if not value:
            self.error("the target is empty: give a group, hosts or labels", path, step=step, field="target")
        return out or None

    def handlers(self, steps: list[Step]) -> set[str]:
        out = {s.on_failure.step for s in steps if s.on_failure.mode == "run" and s.on_failure.step}
        for s in steps:
            if s.id in out:
                if s.explicit_needs and s.needs:
                    self.error("a handler step (named by on_failure: run) runs when its caller fails; it cannot "
                               "have needs", ("steps", self.index(s), "needs"), step=s.id, field="needs")
                for other in steps:
                    if s.id in other.needs and other.explicit_needs:
                        self.error(f"needs {s.id!r}, a handler step that runs only when a step fails",
                                   ("steps", self.index(other), "needs"), step=other.id, field="needs")
            if s.on_failure.step == s.id:
                self.error("on_failure runs the step itself", ("steps", self.index(s), "on_failure"), step=s.id,
                           field="on_failure")
        return {h for h in out if h is not None}

    def index(self, step: Step) -> int:
        for i, raw in enumerate(self.loc.data["steps"]):
            if isinstance(raw, dict) and raw.get("id") == step.id:
                return i
        return 0

    def link(self, steps: list[Step], handlers: set[str]) -> list[Step]:
        """Fill implicit needs (the step before), then look for cycles."""
        flow = [s for s in steps if s.id not in handlers]
        explicit = {s.id: (tuple(n for n in s.needs if n not in handlers) if s.explicit_needs else None)
                    for s in flow}
        needs = dag.implicit_needs([s.id for s in flow], explicit)
        pruned = {k: list(v) for k, v in needs.items()}
        for _ in range(20):  # report each cycle once: break one edge of it and look again
            cycle = dag.find_cycle(pruned)
            if not cycle:
                break
            self.cyclic = True
            first = next(s for s in steps if s.id == cycle[0])
            self.error("the needs form a cycle: " + " -> ".join(cycle), ("steps", self.index(first), "needs"),
                       step=first.id, field="needs")
            pruned[cycle[0]].remove(cycle[1])
        out = []
        for s in steps:
            if s.id in needs and needs[s.id] != s.needs:
                s = dataclasses.replace(s, needs=needs[s.id])
            out.append(s)
        return out
