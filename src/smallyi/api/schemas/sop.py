"""What the SOP routes answer: stored SOPs, their plans and dry runs, problems found validating them.

Runs, their steps and events, approvals and tickets are in :mod:`smallyi.api.schemas.sop_runs`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smallyi.api.schemas import Answer, ErrorDetail
from smallyi.sop.statuses import SopRunStatus

#: every step type (``smallyi.sop.model.STEP_TYPES``)
StepType = Literal["exec", "script", "template", "file", "http", "wait", "approval", "notify", "ticket", "sop", "if"]


class ProblemOut(Answer):
    """One mistake (or warning) found validating a SOP, where it is."""

    line: int | None = Field(description="the line of the YAML, when known")
    step: str | None = Field(description="the step's id, when the problem is in one")
    field: str | None = Field(description="the field at fault, when there is one")
    message: str
    severity: Literal["error", "warning"] = Field(description="warnings do not stop a run (strict mode: errors)")


class SopErrorDetail(ErrorDetail):
    problems: list[ProblemOut] | None = Field(
        default=None, description="an invalid SOP's every problem (code invalid_sop); absent otherwise")


class SopErrorOut(Answer):
    """A refusal; for a SOP that does not validate, ``error.problems`` lists every problem."""

    error: SopErrorDetail


#: a 422 of a route taking SOP YAML: every problem listed (or a plain invalid request)
SOP_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": SopErrorOut, "description": "the SOP does not validate (`error.problems`), or the request is invalid"},
}


class PlanStepOut(Answer):
    id: str
    type: StepType
    does: str = Field(description="one line saying what the step does")
    needs: list[str] = Field(description="the steps it waits for")
    when: str | None = Field(description="its condition, if any")
    handler: bool = Field(description="run only by another step's on_failure (outside the waves)")


class SopPlanOut(Answer):
    """The DAG: steps by wave (each wave can run in parallel), each step's needs, and what each step does."""

    waves: list[list[str]]
    needs: dict[str, list[str]] = Field(description="step id → the step ids it needs")
    steps: list[PlanStepOut]


class GitOriginOut(Answer):
    repo: str = Field(description="the GitOps repository (credentials redacted)")
    path: str = Field(description="the file in it")
    commit: str = Field(description="the commit it was stored from")


class SopSummaryOut(Answer):
    """A stored SOP without its YAML."""

    id: int
    name: str
    description: str
    version: int = Field(description="bumped on every change")
    created_by: str
    updated_by: str
    created_at: str
    updated_at: str
    origin: Literal["platform", "git"] = Field(description="git: from the GitOps repository, read-only here")
    git: GitOriginOut | None = Field(description="for origin git: where it comes from; else null")


class LastRunOut(Answer):
    id: int
    status: SopRunStatus
    started_by: str
    started_at: str | None
    finished_at: str | None
    duration: float | None = Field(description="seconds, once finished")


class SopListItemOut(SopSummaryOut):
    last_run: LastRunOut | None = Field(description="its latest run, or null if it never ran")


class SopOut(SopSummaryOut):
    source: str = Field(description="the YAML as written")


class SopSavedOut(SopOut):
    warnings: list[ProblemOut] = Field(description="what validation warned about (it was stored all the same)")


class VarTypeOut(Answer):
    """A variable's declaration; the optional keys are present only where they apply."""

    type: Literal["any", "string", "int", "enum", "pattern"]
    required: bool = Field(description="declared without a default: every run must give it")
    default: Any = Field(default=None, description="its default (present only when not required)")
    values: list[Any] | None = Field(default=None, description="an enum's values")
    pattern: str | None = Field(default=None, description="a pattern's regular expression")
    min: int | None = None
    max: int | None = None


class SopDetailOut(SopOut):
    plan: SopPlanOut | None = Field(description="null when the stored YAML breaks a newer rule (see problems)")
    vars: dict[str, Any] = Field(description="declared variables and their defaults (null: the run must give it)")
    var_types: dict[str, VarTypeOut] = Field(description="each variable's type and what it accepts")
    environments: list[str] = Field(description="the environments a run can inject (its own and the platform's)")
    problems: list[ProblemOut] | None = Field(
        default=None, description="present only when the stored YAML no longer validates")


class ValidationOut(Answer):
    valid: bool
    problems: list[ProblemOut]
    plan: SopPlanOut | None = Field(description="the plan when the YAML is valid")


class PreviewStepOut(Answer):
    """What one step would do in a dry run; ``hosts``, ``command`` and ``note`` only where they apply."""

    id: str
    type: StepType
    wave: int = Field(description="0 for a handler step (run only on failure)")
    needs: list[str]
    does: str = Field(description="one line saying what the step does")
    when: str | None
    on_failure: Literal["stop", "continue", "run"]
    retries: int
    timeout: float | None = Field(description="seconds")
    hosts: list[str] | None = Field(default=None, description="host steps only: the hosts it would run on")
    command: str | None = Field(default=None, description="exec and script steps: the command as it would run")
    note: str | None = Field(default=None, description="why hosts or command are unknown or partly so")


class PreviewOut(Answer):
    """A dry run: what would run where, in which wave; nothing ran and nothing was recorded."""

    sop: str | None
    environment: str | None
    vars: dict[str, Any] = Field(description="the variables the run would have, defaults applied")
    waves: list[list[str]]
    steps: list[PreviewStepOut]
    handlers: list[PreviewStepOut]
