"""What a SOP is once validated: steps with their dependencies, targets, limits and parameters.

Pure values. ``validate.parse_sop`` builds them from YAML; the runner reads them. Each step type's
own fields stay in ``Step.params`` (already checked), so adding a type does not change this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from smallyi.sop.variables import VarDecl

#: every step type; the first four run on hosts (they need a target)
STEP_TYPES = ("exec", "script", "template", "file", "http", "wait", "approval", "notify", "ticket", "sop", "if")
HOST_TYPES = frozenset({"exec", "script", "template", "file"})

#: fields every step may have
COMMON_FIELDS = frozenset({"id", "type", "name", "description", "needs", "when", "target", "timeout", "retries",
                           "retry_delay", "on_failure", "outputs"})
#: each type's own fields: name → required
TYPE_FIELDS: dict[str, dict[str, bool]] = {
    "exec": {"cmd": True, "concurrency": False},
    "script": {"script": True, "interpreter": False, "args": False, "concurrency": False},
    "template": {"dest": True, "content": True, "mode": False, "owner": False, "concurrency": False},
    "file": {"dest": True, "content": True, "mode": False, "owner": False, "concurrency": False},
    "http": {"url": True, "method": False, "headers": False, "body": False, "json": False, "expect_status": False},
    "wait": {"duration": True},
    "approval": {"message": False, "approvers": False},
    "notify": {"channel": False, "channels": False, "message": True, "title": False},
    "ticket": {"template": True, "title": False, "sla": False, "hosts": False, "fields": False},
    "sop": {"sop": True, "vars": False},
    "if": {"condition": True, "then": False, "else": False},
}
#: actions an ``if`` step may take in ``then`` / ``else``: field → required
ACTIONS: dict[str, dict[str, bool]] = {
    "create_ticket": {"template": True, "title": False, "sla": False, "hosts": False, "fields": False},
    "notify": {"channel": False, "channels": False, "message": True, "title": False},
    "fail": {"message": False},
}
TOP_FIELDS = frozenset({"name", "description", "vars", "environments", "target", "timeout", "notify", "steps"})
NOTIFY_EVENTS = ("success", "failure", "finish")

#: what each step type's result holds (``.steps.<id>.<field>``, and ``.<field>`` from the step before)
_COMMON_RESULT = {"status", "reason", "outputs", "started_at", "finished_at", "duration", "attempts"}
_HOST_RESULT = {"output", "stdout", "stderr", "exit_code", "hosts", "host_names", "ok_hosts", "failed_hosts",
                "task_id", "task_ids"}
RESULT_FIELDS: dict[str, frozenset[str]] = {
    **{t: frozenset(_COMMON_RESULT | _HOST_RESULT) for t in HOST_TYPES},
    "http": frozenset(_COMMON_RESULT | {"status_code", "body", "json", "headers", "output"}),
    "wait": frozenset(_COMMON_RESULT | {"waited"}),
    "approval": frozenset(_COMMON_RESULT | {"decision", "decided_by", "comment"}),
    "notify": frozenset(_COMMON_RESULT | {"delivered", "channels"}),
    "ticket": frozenset(_COMMON_RESULT | {"ticket_id", "ticket_url", "hosts"}),
    "sop": frozenset(_COMMON_RESULT | {"run_id", "steps"}),
    "if": frozenset(_COMMON_RESULT | {"result", "matched_hosts", "tickets", "actions"}),
}
#: roots of the context besides the previous step's fields
CONTEXT_ROOTS = frozenset({"steps", "vars", "env", "environment", "run", "host", "failed_step"})
RUN_FIELDS = frozenset({"id", "sop", "started_by", "environment", "dry_run", "trigger", "status"})
HOST_FIELDS = frozenset({"name", "address", "port", "user", "labels", "groups"})


@dataclass(frozen=True, slots=True)
class OnFailure:
    """What a failed step does to its run: ``stop`` it, ``continue``, or ``run`` a handler step then stop."""

    mode: Literal["stop", "continue", "run"] = "stop"
    step: str | None = None


@dataclass(frozen=True, slots=True)
class NotifySpec:
    channels: tuple[str, ...]
    on: tuple[str, ...] = ("failure",)
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    type: str
    line: int
    name: str = ""
    needs: tuple[str, ...] = ()
    #: the SOP said ``needs:`` (else the step follows the one before it)
    explicit_needs: bool = False
    when: str | None = None
    #: ``group`` / ``hosts`` / ``labels``, each possibly templated
    target: Mapping[str, Any] | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    on_failure: OnFailure = OnFailure()
    #: name → template evaluated against the step's own result
    outputs: Mapping[str, str] = field(default_factory=dict)
    #: the type's own fields, checked
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def on_hosts(self) -> bool:
        return self.type in HOST_TYPES

    @property
    def label(self) -> str:
        return f"{self.id} ({self.type})"


@dataclass(frozen=True, slots=True)
class Sop:
    steps: tuple[Step, ...]
    name: str = ""
    description: str = ""
    #: each variable's default (None for a typed one declared without: the run must give it)
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: each variable's declaration (its type, checked before a run: ``variables``)
    var_decls: Mapping[str, VarDecl] = field(default_factory=dict)
    environments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    target: Mapping[str, Any] | None = None
    timeout: float | None = None
    notify: NotifySpec | None = None
    #: steps run only by another step's ``on_failure: {run: ...}``
    handlers: frozenset[str] = frozenset()

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def flow(self) -> tuple[Step, ...]:
        """The steps of the normal flow (handlers excluded), in file order."""
        return tuple(s for s in self.steps if s.id not in self.handlers)
