"""The SOP service: validate, store, start, follow, cancel and approve runs; pick up runs after a crash.

The API, the CLI and the scheduler all come through here. A run is recorded before it starts (its
exact YAML too), runs in the background of the process that started it, and renews a lease; a
process that finds a run whose owner died resumes it when only waits and approvals were in flight,
and marks it interrupted otherwise (commands on hosts are never silently re-run).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from smallyi.approvals.requests import Approvals
from smallyi.approvals.steps import StepApprovalDict, StepApprovals, step_approval_dict
from smallyi.audit.trail import AuditTrail
from smallyi.auth.accounts import Accounts
from smallyi.auth.rbac import RoleBook
from smallyi.bus.base import Bus
from smallyi.config import Settings
from smallyi.errors import Conflict, Forbidden, InputError
from smallyi.inventory.service import InventoryService
from smallyi.notify.service import NotifyService
from smallyi.runners import ProcessState, process_state
from smallyi.sop import preview as previews
from smallyi.sop import variables
from smallyi.sop.model import Sop
from smallyi.sop.preview import Preview
from smallyi.sop.problems import Problem
from smallyi.sop.records import RunRecords
from smallyi.sop.runner import Runner
from smallyi.sop.statuses import FINAL_RUN, SopRunStatus, SopStepStatus
from smallyi.sop.steps import RESUMABLE
from smallyi.sop.steps.base import CallResult, Deps, OutputListener, RunSpec
from smallyi.sop.store import SopStore
from smallyi.sop.validate import Knowns, load_sop, parse_sop
from smallyi.storage.db import Database
from smallyi.storage.models import SopRun, utcnow
from smallyi.tasks.queries import Archive
from smallyi.tasks.service import TaskService
from smallyi.tickets.service import TicketService
from smallyi.types import ApprovalStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Starter:
    """Who starts a run, with which rights (a resumed run keeps them), and how."""

    username: str
    role: str = "admin"
    groups: tuple[str, ...] = ()
    trigger: str = "cli"
    #: the address the start came from (API calls), for the audit record
    client: str = ""


def runner_alive(runner: str, own: str) -> bool:
    """False when ``runner`` was a process on this machine that is gone; other machines: see the lease."""
    if runner == own:
        return True
    return process_state(runner) is not ProcessState.GONE


class SopService:
    def __init__(self, *, settings: Settings, db: Database, bus: Bus, tasks: TaskService,
                 inventory: InventoryService, archive: Archive, roles: RoleBook, runner: str,
                 notify: NotifyService | None = None, tickets: TicketService | None = None,
                 http_transport: Any = None, audit: AuditTrail | None = None,
                 accounts: Accounts | None = None, approvals: Approvals | None = None) -> None:
        self.settings = settings
        #: who stands behind a run, and whether they may still act (None: not checked, e.g. unit tests)
        self.accounts = accounts
        #: starts, ends, cancels and approval decisions of runs go here (None: not audited, e.g. unit tests)
        self.audit = audit
        self.db = db
        self.roles = roles
        self.runner_id = runner
        self.inventory = inventory
        self.notify = notify
        self.tickets = tickets
        self.store = SopStore(db)
        self.records = RunRecords(db, bus)
        #: the requests of this platform's ``approval`` steps
        self.step_approvals = StepApprovals(db)
        approvals = approvals or Approvals(db, ttl=settings.policy.approval_ttl, accounts=accounts)
        self.deps = Deps(settings=settings, records=self.records, tasks=tasks, approvals=approvals,
                         step_approvals=self.step_approvals,
                         inventory=inventory, archive=archive,
                         notify=notify, tickets=tickets, call_sop=self._call, http_transport=http_transport)
        self._live: dict[int, asyncio.Task[tuple[SopRunStatus, str]]] = {}

    # -- checking ------------------------------------------------------------------------------

    async def knowns(self) -> Knowns:
        """Names the platform knows, for validation: ticket templates, channels, stored SOPs, environments."""
        channels = await self.notify.channels.names() if self.notify is not None else None
        return Knowns(ticket_templates=frozenset(self.settings.tickets.templates),
                      channels=frozenset(channels) if channels is not None else None,
                      sops=await self.store.names(), environments=self.settings.sop.environments)

    async def validate(self, source: str, *, strict: bool = False, name: str = "sop.yaml",
                       ) -> tuple[Sop | None, list[Problem]]:
        return parse_sop(source, source=name, strict=strict, knowns=await self.knowns())

    def environment(self, sop: Sop, name: str) -> dict[str, Any]:
        """The variables of environment ``name`` (the config's, overridden by the SOP's own): values of any
        shape, as written."""
        if not name:
            return {}
        known = {**self.settings.sop.environments, **sop.environments}
        if name not in known:
            shown = ", ".join(sorted(known)) or "none are declared"
            raise InputError(f"inject-env: no environment {name!r} ({shown})", field="inject-env")
        return {**self.settings.sop.environments.get(name, {}), **sop.environments.get(name, {})}

    def variables(self, sop: Sop, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The SOP's ``vars:`` defaults overridden by the run's, each checked against its declared type; an
        undeclared name (a typo), a missing required one or a value of the wrong type is refused, naming it."""
        decls = sop.var_decls or {name: variables.VarDecl(name, default=v) for name, v in sop.vars.items()}
        return variables.resolve(decls, given)

    # -- starting and following ----------------------------------------------------------------

    async def start(self, sop: Sop, source: str, *, starter: Starter, environment: str = "",
                    variables: Mapping[str, Any] | None = None, target: Mapping[str, Any] | None = None,
                    listener: OutputListener | None = None, version: int = 0, schedule_id: int | None = None,
                    parent: tuple[int, str] | None = None, depth: int = 0, name: str = "") -> int:
        """Record a run and start it in the background; returns its id.

        ``name``: the stored SOP's name (with ``version``), for a SOP whose YAML has no ``name:``.
        """
        if name and not sop.name:
            sop = dataclasses.replace(sop, name=name)
        env = self.environment(sop, environment)
        values = self.variables(sop, variables)
        wave_of = {sid: i for i, wave in enumerate(previews.waves(sop), 1) for sid in wave}
        steps = [(s.id, s.type, wave_of.get(s.id, 0)) for s in sop.steps]
        row = SopRun(sop_name=sop.name, sop_version=version, source=source, status=SopRunStatus.RUNNING,
                     trigger=starter.trigger, started_by=starter.username, role=starter.role,
                     groups=list(starter.groups), environment=environment, target=dict(target or {}), vars=values,
                     runner=self.runner_id, heartbeat_at=utcnow(), schedule_id=schedule_id,
                     parent_run_id=parent[0] if parent else None, parent_step=parent[1] if parent else "",
                     created_at=utcnow())
        run_id = await self.records.create(row, steps)
        spec = RunSpec(run_id=run_id, sop=sop, started_by=starter.username,
                       access=self.roles.access(starter.username, starter.role, starter.groups), role=starter.role,
                       trigger=starter.trigger, environment=environment, env=env, vars=values,
                       target=dict(target) if target else None, depth=depth, listener=listener)
        await self._audit("sop.start", actor=starter.username, run_id=run_id, sop=sop.name, client=starter.client,
                          detail={"version": version, "trigger": starter.trigger, "environment": environment,
                                  "target": dict(target or {}),
                                  **({"schedule": schedule_id} if schedule_id is not None else {}),
                                  **({"parent": {"run": parent[0], "step": parent[1]}} if parent else {})})
        self._drive(Runner(self.deps, spec))
        log.info("SOP run %s (%s) started by %s", run_id, sop.name or "file", starter.username)
        return run_id

    async def _audit(self, action: str, *, actor: str, run_id: int, sop: str, result: str = "ok", client: str = "",
                     detail: dict[str, Any] | None = None) -> None:
        if self.audit is not None:
            await self.audit.safe_record(action, actor=actor, client=client, result=result, perm="sop.run",
                                         target=f"SOP run {run_id} ({sop or 'file'})",
                                         detail={"run": run_id, "sop": sop, **(detail or {})})

    def _drive(self, runner: Runner) -> None:
        run_id = runner.spec.run_id

        async def finished(status: SopRunStatus, reason: str) -> None:
            await self._audit("sop.finish", actor=runner.spec.started_by, run_id=run_id, sop=runner.sop.name,
                              result=status, detail={"reason": reason} if reason else None)

        async def drive() -> tuple[SopRunStatus, str]:
            try:
                status, reason = await runner.run()
            except asyncio.CancelledError:  # the process stops: the run was paused (no end yet) or interrupted
                with contextlib.suppress(Exception):
                    row = await asyncio.shield(self.records.run(run_id))
                    if row.status == SopRunStatus.INTERRUPTED:
                        await asyncio.shield(finished(SopRunStatus.INTERRUPTED, row.reason))
                raise
            await finished(status, reason)
            return status, reason

        task = asyncio.create_task(drive(), name=f"sop-run-{run_id}")
        self._live[run_id] = task

        def forget(_t: asyncio.Task[tuple[SopRunStatus, str]]) -> None:
            self._live.pop(run_id, None)

        task.add_done_callback(forget)

    async def wait(self, run_id: int, *, poll: float = 0.5) -> tuple[SopRunStatus, str]:
        """(status, reason) once the run ends, wherever it runs."""
        task = self._live.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        while True:
            row = await self.records.run(run_id)
            if row.status in FINAL_RUN:
                return SopRunStatus(row.status), row.reason
            await asyncio.sleep(poll)

    def running_here(self, run_id: int) -> bool:
        return run_id in self._live

    async def active(self, run_id: int) -> bool:
        return (await self.records.run(run_id)).status not in FINAL_RUN

    async def cancel(self, run_id: int, *, by: str, client: str = "") -> Literal["cancelling", "cancel requested"]:
        """Ask the run's process (this one or another) to cancel it."""
        row = await self.records.run(run_id)
        if row.status in FINAL_RUN:
            raise Conflict(f"SOP run {run_id} already finished ({row.status})")
        await self.records.set_run(run_id, cancel_requested=by)
        await self._audit("sop.cancel", actor=by, run_id=run_id, sop=row.sop_name, client=client)
        return "cancelling" if run_id in self._live else "cancel requested"

    async def decide(self, run_id: int, step_id: str, *, by: str, approve: bool, comment: str = "",
                     client: str = "") -> StepApprovalDict:
        row = await self.step_approvals.at_step(run_id, step_id)
        if self.accounts is not None and row.status == ApprovalStatus.PENDING:
            person = await self.accounts.person_of(row.requested_by)
            if by == person != row.requested_by:  # a schedule's owner may not approve its runs' steps
                raise Forbidden(f"you stand behind run {run_id} ({row.requested_by}); another user must decide")
            standing = await self.accounts.standing(person)
            if not standing.ok and approve:
                reason = f"the {standing.problem('person behind the run')}"
                await self.step_approvals.expire(row.id, ApprovalStatus.CANCELLED, comment=reason)
                raise Conflict(f"approval {row.id} was cancelled: {reason}")
        decided = await self.step_approvals.decide(row.id, by=by, approve=approve, comment=comment)
        run = await self.records.run(run_id)
        await self._audit("sop.approved" if approve else "sop.rejected", actor=by, run_id=run_id, sop=run.sop_name,
                          client=client, detail={"step": step_id, **({"comment": comment} if comment else {})})
        return step_approval_dict(decided)

    async def preview(self, sop: Sop, *, environment: str = "", variables: Mapping[str, Any] | None = None,
                      target: Mapping[str, Any] | None = None) -> Preview:
        """Dry run: what would run where, in which wave; nothing runs and nothing is recorded."""
        return await previews.preview(sop, self.inventory, env=self.environment(sop, environment),
                                      environment=environment, variables=self.variables(sop, variables),
                                      target=target)

    async def _call(self, name: str, variables: dict[str, Any], parent_run: int, parent_step: str,
                    depth: int, cancel: asyncio.Event) -> CallResult:
        """A ``sop`` step: run a stored SOP as a child, as the parent's starter, and wait for it
        (cancelling the parent cancels the child)."""
        definition = await self.store.get(name)
        sop, _ = load_sop(definition.source, source=name)
        parent = await self.records.run(parent_run)
        starter = Starter(parent.started_by, parent.role, tuple(parent.groups), "sop")
        run_id = await self.start(sop, definition.source, starter=starter, environment=parent.environment,
                                  variables=variables, target=parent.target or None, version=definition.version,
                                  parent=(parent_run, parent_step), depth=depth, name=name)
        waiter = asyncio.ensure_future(self.wait(run_id))
        stopper = asyncio.ensure_future(cancel.wait())
        try:
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                with contextlib.suppress(Conflict):
                    await self.cancel(run_id, by=f"the parent run {parent_run}")
            status, reason = await waiter
        finally:
            stopper.cancel()
        steps = {s.step_id: SopStepStatus(s.status) for s in await self.records.steps(run_id)}
        return CallResult(run_id, status, reason, steps)

    # -- after a crash -------------------------------------------------------------------------

    async def recover(self) -> tuple[list[int], list[int]]:
        """Resume or interrupt runs whose process is gone; returns (resumed, interrupted) ids."""
        resumed: list[int] = []
        interrupted: list[int] = []
        orphans = await self.records.orphans(lease=self.settings.sop.lease,
                                             alive=lambda r: runner_alive(r, self.runner_id))
        for row in sorted(orphans, key=lambda r: r.id):
            if row.runner == self.runner_id or row.id in self._live:
                continue
            if not await self.records.claim(row.id, runner=self.runner_id, expect_runner=row.runner):
                continue  # another process took it
            try:
                if await self._resumable(row):
                    self._drive(Runner(self.deps, self._spec_of(row), resume=True))
                    resumed.append(row.id)
                    continue
            except Exception:
                log.exception("SOP run %s cannot be resumed", row.id)
            await self._interrupt(row.id)
            interrupted.append(row.id)
        if resumed or interrupted:
            log.warning("SOP runs left by a stopped process: resumed %s, interrupted %s", resumed, interrupted)
        return resumed, interrupted

    async def _resumable(self, row: SopRun) -> bool:
        if row.parent_run_id is not None:
            parent = await self.records.run(row.parent_run_id)
            if parent.status != SopRunStatus.RUNNING:
                return False
        for step in await self.records.steps(row.id):
            if SopStepStatus(step.status).in_flight and (step.type not in RESUMABLE or step.type == "sop"):
                return False
        return True

    def _spec_of(self, row: SopRun) -> RunSpec:
        sop, _ = load_sop(row.source, source=row.sop_name or f"run {row.id}")
        return RunSpec(run_id=row.id, sop=sop, started_by=row.started_by,
                       access=self.roles.access(row.started_by, row.role, tuple(row.groups)), role=row.role,
                       trigger=row.trigger, environment=row.environment, env=self.environment(sop, row.environment),
                       vars=dict(row.vars), target=dict(row.target) or None)

    async def _interrupt(self, run_id: int) -> None:
        reason = "the process running it stopped"
        for step in await self.records.steps(run_id):
            status = SopStepStatus(step.status)
            if status.in_flight:
                await self.records.set_step(run_id, step.step_id, status=SopStepStatus.INTERRUPTED, reason=reason)
            elif status is SopStepStatus.PENDING:
                await self.records.set_step(run_id, step.step_id, status=SopStepStatus.SKIPPED,
                                            reason="the run was interrupted")
        seq = await self.records.last_seq(run_id)
        await self.records.event(run_id, seq + 1, "run.finish",
                                 data={"status": SopRunStatus.INTERRUPTED, "reason": reason})
        await self.records.set_run(run_id, status=SopRunStatus.INTERRUPTED, reason=reason, finished_at=utcnow())
        row = await self.records.run(run_id)
        await self._audit("sop.finish", actor=row.started_by, run_id=run_id, sop=row.sop_name,
                          result=SopRunStatus.INTERRUPTED,
                          detail={"reason": reason})

    async def watch(self, interval: float | None = None) -> None:
        """Now and then, take over runs whose process stopped renewing them (other replicas, dead CLIs)."""
        every = interval or max(1.0, self.settings.sop.lease / 2)
        while True:
            await asyncio.sleep(every)
            try:
                await self.recover()
            except Exception:
                log.exception("SOP: looking for abandoned runs failed")

    async def close(self) -> None:
        """Stop runs in this process: waiting ones are left to resume, the rest are interrupted."""
        tasks = list(self._live.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
