"""Checking the names expressions read (``.steps.x.output``, ``.vars.y``, ``.env.z``) against the SOP. Pure.

A step may read the steps it waits for (directly or not), the SOP's variables, the injected
environment's variables, the run, and the fields of the step before it (``.output``). Anything else
is undefined: an error in strict mode, a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smallyi.sop import dag
from smallyi.sop.expr import Template
from smallyi.sop.model import CONTEXT_ROOTS, HOST_FIELDS, RESULT_FIELDS, RUN_FIELDS, Sop, Step
from smallyi.sop.yamlsrc import Path

_ALL_RESULT_FIELDS = frozenset().union(*RESULT_FIELDS.values())


@dataclass(frozen=True, slots=True)
class Use:
    """A template found in the SOP: where it is, and whether it reads its own step (``outputs:``)."""

    step: str | None
    field: str
    path: Path
    template: Template
    itself: bool = False


@dataclass(frozen=True, slots=True)
class RefProblem:
    message: str
    path: Path
    step: str | None
    field: str


def check(sop: Sop, uses: list[Use], *, knowns_envs: Mapping[str, Mapping[str, Any]] | None) -> list[RefProblem]:
    plan = dag.plan(sop)
    steps = {s.id: s for s in sop.steps}
    envs = {**(knowns_envs or {}), **sop.environments}
    out: list[RefProblem] = []
    for use in uses:
        step = steps.get(use.step) if use.step else None
        for path, _pos in use.template.fields():
            msg = _check_path(path, sop, step, use, plan, steps, envs)
            if msg:
                out.append(RefProblem(msg, use.path, use.step, use.field))
    return out


def _check_path(path: tuple[str, ...], sop: Sop, step: Step | None, use: Use, plan: dag.Plan,
                steps: Mapping[str, Step], envs: Mapping[str, Mapping[str, Any]]) -> str | None:
    if not path:
        return None
    root, rest = path[0], path[1:]
    shown = "." + ".".join(path)
    if root == "steps":
        return _check_step_ref(rest, shown, step, plan, steps, sop)
    if root == "vars":
        if rest and rest[0] not in sop.vars and rest[0] not in sop.var_decls:
            return f"{shown}: variable {rest[0]!r} is not declared under vars:"
        return None
    if root == "env":
        if not envs:
            return f"{shown}: no environments are declared (environments: in the SOP or sop.environments in the config)"
        missing = [e for e, values in envs.items() if rest and rest[0] not in values]
        if missing:
            return f"{shown}: {rest[0]!r} is not set in environment(s) {', '.join(sorted(missing))}"
        return None
    if root == "run":
        if rest and rest[0] not in RUN_FIELDS:
            return f"{shown}: the run has no field {rest[0]!r}; it has {', '.join(sorted(RUN_FIELDS))}"
        return None
    if root == "host":
        if step is None or step.type not in ("template", "file", "if"):
            return f"{shown}: .host exists only in template steps and if conditions (one host at a time)"
        if rest and rest[0] not in HOST_FIELDS:
            return f"{shown}: a host has no field {rest[0]!r}; it has {', '.join(sorted(HOST_FIELDS))}"
        return None
    if root == "failed_step":
        if step is None or step.id not in sop.handlers:
            return f"{shown}: .failed_step exists only in handler steps (named by on_failure: run)"
        return None
    if root == "environment":
        return None
    return _check_shortcut(root, shown, step, use, sop, steps)


def _check_step_ref(rest: tuple[str, ...], shown: str, step: Step | None, plan: dag.Plan,
                    steps: Mapping[str, Step], sop: Sop) -> str | None:
    if not rest:
        return None
    target = steps.get(rest[0])
    if target is None:
        return f"{shown}: there is no step {rest[0]!r}"
    if step is not None and step.id not in sop.handlers and step.id != target.id \
            and target.id not in plan.ancestors(step.id):
        return (f"{shown}: step {target.id!r} does not run before {step.id!r}; "
                f"add it to needs: so its result exists")
    return _check_result_field(target, rest[1:], shown)


def _check_result_field(target: Step, rest: tuple[str, ...], shown: str) -> str | None:
    if not rest:
        return None
    fields = RESULT_FIELDS[target.type]
    if rest[0] not in fields:
        return f"{shown}: a {target.type} step's result has no {rest[0]!r}; it has {', '.join(sorted(fields))}"
    if rest[0] == "outputs" and len(rest) > 1 and rest[1] not in target.outputs:
        return f"{shown}: step {target.id!r} declares no output {rest[1]!r} (outputs:)"
    return None


def _check_shortcut(root: str, shown: str, step: Step | None, use: Use, sop: Sop,
                    steps: Mapping[str, Step]) -> str | None:
    """``.output`` and friends: the fields of the step before (or of the step itself, in outputs:)."""
    if step is None:
        if root in _ALL_RESULT_FIELDS:
            return None  # the SOP's notify message reads the run's last step
        return f"{shown}: undefined; names start with .steps, .vars, .env, .run or a result field"
    if use.itself:
        dot: Step | None = step
    elif step.id in sop.handlers:
        return None if root in _ALL_RESULT_FIELDS else f"{shown}: undefined in a handler step"
    else:
        dot = steps.get(step.needs[0]) if step.needs else None
    if dot is None:
        if root in _ALL_RESULT_FIELDS:
            return f"{shown}: step {step.id!r} has no step before it to read {shown} from"
        return f"{shown}: undefined variable (known roots: {', '.join(sorted(CONTEXT_ROOTS))})"
    if root not in RESULT_FIELDS[dot.type]:
        return (f"{shown}: undefined; the step before ({dot.id}, {dot.type}) has "
                f"{', '.join(sorted(RESULT_FIELDS[dot.type]))}")
    return None


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
