"""Dry runs and plans: what each step would do, where, in which wave, without running anything.

Values that come from earlier steps are not known before the run: fields that read them are shown
as written and flagged ``decided at run time``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from smallyi.errors import SmallYiError
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.sop import context, dag
from smallyi.sop.expr import compile_template
from smallyi.sop.model import RESULT_FIELDS, Sop, Step
from smallyi.sop.steps.commands import exec_command, script_step

_LATE_ROOTS = frozenset({"steps", "failed_step", "host"}) | frozenset().union(*RESULT_FIELDS.values())


class PreviewStep(TypedDict):
    """What one step would do (``PreviewStepOut``); ``hosts``, ``command`` and ``note`` only where they apply."""

    id: str
    type: str
    #: 0 for a handler (run only when a step fails)
    wave: int
    needs: list[str]
    does: str
    when: str | None
    on_failure: Literal["stop", "continue", "run"]
    retries: int
    timeout: float | None
    hosts: NotRequired[list[str]]
    command: NotRequired[str]
    note: NotRequired[str]


class Preview(TypedDict):
    """A dry run (``PreviewOut``): what would run where, in which wave."""

    sop: str | None
    environment: str | None
    #: the variables the run would have: whatever the SOP declares
    vars: dict[str, Any]
    waves: list[list[str]]
    steps: list[PreviewStep]
    handlers: list[PreviewStep]


def waves(sop: Sop) -> tuple[tuple[str, ...], ...]:
    return dag.plan(sop).waves


def late(text: str) -> bool:
    """True if ``text`` reads something only known during the run (an earlier step's result, a host)."""
    try:
        paths = [path for path, _ in compile_template(text, bare="{{" not in text).fields()]
        return any(path and path[0] in _LATE_ROOTS for path in paths)
    except SmallYiError:
        return False


def describe(step: Step) -> str:
    """One line saying what the step does (for ``sop plan``)."""
    p, t = step.params, step.type
    if t == "exec":
        return str(p.get("cmd", ""))
    if t == "script":
        return f"{p.get('interpreter', 'sh')} script ({len(str(p.get('script', '')).splitlines())} lines)"
    if t in ("template", "file"):
        return f"{'render and ' if t == 'template' else ''}write {p.get('dest')}"
    if t == "http":
        return f"{p.get('method', 'GET')} {p.get('url')}"
    if t == "wait":
        return f"wait {p.get('duration') or 0:g}s"
    if t == "approval":
        return "wait for approval" + (f" by {', '.join(p['approvers'])}" if p.get("approvers") else "")
    if t == "notify":
        return f"notify {', '.join(p.get('channels', []))}"
    if t == "ticket":
        return f"open ticket ({p.get('template')})"
    if t == "sop":
        return f"run SOP {p.get('sop')}"
    then = ", ".join(a["action"] for a in p.get("then", [])) or "nothing"
    other = ", ".join(a["action"] for a in p.get("else", []))
    return f"when {p.get('condition')}: {then}" + (f"; else {other}" if other else "")


async def preview(sop: Sop, inventory: InventoryService, *, env: Mapping[str, Any], environment: str,
                  variables: Mapping[str, Any], target: Mapping[str, Any] | None) -> Preview:
    plan = dag.plan(sop)
    ctx = context.build(results={}, dot=None, vars=variables, env=env, environment=environment,
                        run={"id": 0, "sop": sop.name, "started_by": "", "environment": environment,
                             "dry_run": True, "trigger": "dry-run"})
    out: list[PreviewStep] = []
    for wave_no, wave in enumerate(plan.waves, 1):
        for sid in wave:
            out.append(await _step(sop.step(sid), wave_no, ctx, inventory, sop, target))
    handlers = [await _step(sop.step(h), 0, ctx, inventory, sop, target) for h in sorted(sop.handlers)]
    return {"sop": sop.name or None, "environment": environment or None, "vars": dict(variables),
            "waves": [list(w) for w in plan.waves], "steps": out, "handlers": handlers}


async def _step(step: Step, wave: int, ctx: dict[str, Any], inventory: InventoryService, sop: Sop,
                target: Mapping[str, Any] | None) -> PreviewStep:
    item: PreviewStep = {"id": step.id, "type": step.type, "wave": wave, "needs": list(step.needs),
                            "does": describe(step), "when": step.when, "on_failure": step.on_failure.mode,
                            "retries": step.retries, "timeout": step.timeout}
    if not step.on_hosts:
        return item
    raw = step.target or sop.target or target
    if not raw:
        item["hosts"], item["note"] = [], "no target: give the step or the SOP one, or --group/--hosts/--label"
        return item
    texts = [raw.get("group") or "", *raw.get("hosts", []), *dict(raw.get("labels", {})).values()]
    if any(late(t) for t in texts if t):
        item["hosts"], item["note"] = [], "hosts decided at run time (the target reads earlier steps)"
    else:
        try:
            hosts: list[str] = []
            for text in raw.get("hosts", []):
                value = compile_template(text).evaluate(ctx)
                hosts += [str(v) for v in value] if isinstance(value, list) else str(value).replace(",", " ").split()
            group = compile_template(raw["group"]).render(ctx) if raw.get("group") else None
            labels = {k: compile_template(v).render(ctx) for k, v in dict(raw.get("labels", {})).items()}
            sel = Selector(group=group or None, hosts=tuple(hosts), labels=labels)
            item["hosts"] = [h.name for h in await inventory.resolve(sel)]
        except SmallYiError as exc:
            item["hosts"], item["note"] = [], exc.message
    p = step.params
    source = p.get("cmd") or p.get("script") or p.get("content") or ""
    if step.type in ("exec", "script"):
        try:
            if step.type == "exec":
                item["command"] = exec_command(source, ctx, sop.var_decls)
            else:
                args = [compile_template(a).render(ctx) for a in p.get("args", [])]
                item["command"] = script_step(source, ctx, sop.var_decls, p.get("interpreter", "sh"), args)
        except SmallYiError as exc:
            item["command"] = source
            item["note"] = (item.get("note", "") + "; " if item.get("note") else "") + exc.message
    if late(source):
        item["note"] = (item.get("note", "") + "; " if item.get("note") else "") + \
            "parts of the command are decided at run time (they read earlier steps)"
    return item
