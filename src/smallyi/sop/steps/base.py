"""What a step handler gets and gives: a :class:`StepCall` in, an :class:`Outcome` out.

Handlers live one per module family (``hosts``, ``web``, ``waits``, ``tickets``, ``calls``); the
runner looks them up by type in :data:`smallyi.sop.steps.HANDLERS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from smallyi.approvals.requests import Approvals
from smallyi.approvals.steps import StepApprovals
from smallyi.auth.caller import Caller
from smallyi.auth.rbac import Access
from smallyi.config import Settings
from smallyi.execution.wire import Wire
from smallyi.inventory.service import InventoryService
from smallyi.notify.service import NotifyService
from smallyi.sop.expr import compile_template
from smallyi.sop.model import Sop, Step
from smallyi.sop.records import RunRecords
from smallyi.sop.statuses import SopRunStatus, SopStepStatus
from smallyi.tasks.queries import Archive
from smallyi.tasks.service import TaskService
from smallyi.tickets.service import TicketService

#: (step id, task wire event) for a live printer of host output
OutputListener = Callable[[str, Wire], None]


@dataclass(frozen=True)
class CallResult:
    """How a child run (a ``sop`` step's) ended, and each of its steps."""

    run_id: int
    status: SopRunStatus
    reason: str
    steps: dict[str, SopStepStatus]


#: runs another stored SOP as a child of a step: (name, vars, parent run id, parent step, depth, cancel)
CallSop = Callable[[str, dict[str, Any], int, str, int, asyncio.Event], Awaitable[CallResult]]


@dataclass
class Deps:
    """The services steps use; built once per process."""

    settings: Settings
    records: RunRecords
    tasks: TaskService
    #: command approval requests, for a step the policy holds (``held``)
    approvals: Approvals
    #: the requests of ``approval`` steps (``waits``)
    step_approvals: StepApprovals
    inventory: InventoryService
    archive: Archive
    notify: NotifyService | None = None
    tickets: TicketService | None = None
    call_sop: CallSop | None = None
    #: tests hand in a transport for http steps
    http_transport: httpx.AsyncBaseTransport | None = None


@dataclass
class RunSpec:
    """One run's fixed facts."""

    run_id: int
    sop: Sop
    started_by: str
    access: Access
    role: str = "admin"
    trigger: str = "cli"
    environment: str = ""
    env: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: the run's default target (``--group`` / ``--hosts`` / ``--label``)
    target: Mapping[str, Any] | None = None
    depth: int = 0
    listener: OutputListener | None = None

    @property
    def task_user(self) -> str:
        """Who tasks of this run are archived as: the run and the person behind it."""
        return f"sop:{self.run_id}:{self.started_by}"

    def caller(self, kind: str) -> Caller:
        """Who this run's commands are checked and archived as; ``kind`` is what an approval request made
        for one says it is (``sop-command``, ``sop-file``)."""
        return Caller(self.task_user, role=self.role, client=f"sop-run:{self.run_id}", kind=kind,
                      person=self.started_by)

    def run_fields(self) -> dict[str, Any]:
        """What expressions read as ``.run`` (a mapping: it is part of their context)."""
        return {"id": self.run_id, "sop": self.sop.name, "started_by": self.started_by,
                "environment": self.environment, "dry_run": False, "trigger": self.trigger,
                "status": SopRunStatus.RUNNING}


@dataclass
class Outcome:
    """How one attempt of a step ended: success, failed, timeout, skipped or cancelled, and why."""

    status: SopStepStatus
    #: what later steps read as ``.steps.<id>``: its fields depend on the step's type
    result: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class StepCall:
    deps: Deps
    spec: RunSpec
    step: Step
    ctx: dict[str, Any]
    attempt: int
    cancel: asyncio.Event
    #: the step's event writer: (kind, data)
    emit: Callable[[str, Mapping[str, Any]], Awaitable[None]]
    #: the result of the previous attempt (a retry runs again only where it failed)
    previous: Mapping[str, Any] | None = None
    #: when the step first started (a resumed wait keeps its deadline)
    started_at: float = 0.0
    task_ids: list[int] = field(default_factory=list)

    def render(self, text: str, *, ctx: Mapping[str, Any] | None = None) -> str:
        """Text for a message, a path or a request (commands: ``steps.commands``)."""
        return compile_template(text).render(ctx if ctx is not None else self.ctx)

    def value(self, text: str, ctx: Mapping[str, Any] | None = None) -> Any:
        """A lone action keeps its type (a list stays a list); other text renders."""
        return compile_template(text).evaluate(ctx if ctx is not None else self.ctx)

    def tree(self, value: Any) -> Any:
        """Every string inside a structure evaluated (JSON bodies, headers, vars passed on)."""
        if isinstance(value, str):
            return self.value(value)
        if isinstance(value, dict):
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value
