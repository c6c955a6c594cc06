"""Wiring: the SOP runner, schedules, notifications and tickets built for one runtime.

``attach(rt)`` (the server) builds them, resumes or interrupts runs a stopped process left, starts
the scheduler, the watcher of finished tasks (``notify.tasks`` and tasks' own ``notify``) and the lookout
for abandoned runs, sets them as the runtime's ``automation`` (a typed field ``Runtime`` declares), and
returns one background task whose cancellation (at ``Runtime.close``) stops them all. ``build`` alone
serves the CLI. ``of(rt)`` finds them again (the API's routers use it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from smallyi.approvals.requests import Approvals
from smallyi.audit.trail import AuditTrail
from smallyi.auth.rbac import Access, RoleBook
from smallyi.auth.service import AuthService
from smallyi.bus.base import Bus
from smallyi.config import Settings
from smallyi.gitops.reports import SyncRecord
from smallyi.inventory.service import InventoryService
from smallyi.notify.channels import ChannelStore
from smallyi.notify.service import NotifyService
from smallyi.notify.syncs import notify_sync
from smallyi.notify.tasks import TaskWatcher
from smallyi.schedules.clock import Clock
from smallyi.schedules.scheduler import Launched, Scheduler
from smallyi.schedules.store import ScheduleStore
from smallyi.secrets import redact
from smallyi.secrets.store import SecretStore
from smallyi.sop.service import SopService, Starter
from smallyi.sop.validate import load_sop
from smallyi.storage.db import Database
from smallyi.storage.models import Schedule
from smallyi.tasks.queries import Archive
from smallyi.tasks.service import TaskService
from smallyi.tickets.service import TicketService

log = logging.getLogger(__name__)


class Parts(Protocol):
    """What of the runtime this needs (``smallyi.runtime.Runtime`` has it)."""

    settings: Settings
    db: Database
    bus: Bus
    tasks: TaskService
    approvals: Approvals
    inventory: InventoryService
    archive: Archive
    roles: RoleBook
    secrets: SecretStore
    audit: AuditTrail
    auth: AuthService
    #: set by :func:`attach`: the server's automation (None in the CLI and before the server starts it)
    automation: Automation | None


@dataclass
class Automation:
    sop: SopService
    schedules: ScheduleStore
    notify: NotifyService
    tickets: TicketService
    scheduler: Scheduler
    #: the watcher of finished tasks (``notify.tasks``), once started
    watcher: TaskWatcher | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for t in self._background:
            t.cancel()
        for t in self._background:
            with contextlib.suppress(BaseException):
                await t
        await self.scheduler.close()
        await self.sop.close()
        await self.notify.drain(timeout=5.0)
        await self.notify.close()


def build(rt: Parts, *, clock: Clock | None = None, transport: Any = None) -> Automation:
    """The services, not started (the CLI uses them in-process)."""
    s = rt.settings
    channels = ChannelStore(rt.db, s.notify.channels, rt.secrets.box, redact.shared())
    notify = NotifyService(rt.db, s.notify, channels, redactor=redact.shared(), transport=transport)
    tickets = TicketService(rt.db, s.tickets, transport=transport)
    sop = SopService(settings=s, db=rt.db, bus=rt.bus, tasks=rt.tasks, approvals=rt.approvals,
                     inventory=rt.inventory, archive=rt.archive,
                     roles=rt.roles, runner=rt.tasks.runner, notify=notify, tickets=tickets, http_transport=transport,
                     audit=rt.audit, accounts=rt.auth.accounts)
    store = ScheduleStore(rt.db)

    async def launch(schedule: Schedule, fire_id: int, owner: Access) -> Launched:
        definition = await sop.store.get(schedule.sop_name)
        parsed, _ = load_sop(definition.source, source=schedule.sop_name)
        run_id = await sop.start(parsed, definition.source, version=definition.version,
                                 starter=Starter(f"schedule:{schedule.name}", owner.role, owner.groups, "schedule"),
                                 environment=schedule.environment, variables=schedule.vars,
                                 target=schedule.target or None, schedule_id=schedule.id, name=schedule.sop_name)
        return Launched(run_id, sop.wait(run_id))

    scheduler = Scheduler(db=rt.db, store=store, tasks=rt.tasks, settings=s.schedules, runner=rt.tasks.runner,
                          clock=clock, accounts=rt.auth.accounts, audit=rt.audit, notify=notify,
                          notify_settings=s.notify, launch_sop=launch, run_active=sop.active)
    return Automation(sop, store, notify, tickets, scheduler)


async def _notify_syncs(rt: Parts, notify: NotifyService) -> None:
    """Send ``gitops.notify`` messages when syncs, rollbacks and drift checks end."""
    rule = rt.settings.gitops.notify
    gitops = getattr(rt, "gitops", None)  # the runtime's (Parts does not declare it: tests build without)
    if gitops is None or not rt.settings.gitops.repo:
        return
    if not rule.channels:
        gitops.on_finish = None  # a reload may have removed them
        return
    unknown = sorted(set(rule.channels) - await notify.channels.names())
    if unknown:
        log.warning("gitops.notify: no channel named %s; those messages fail", ", ".join(unknown))
    configured = rt.settings.notify.templates

    async def on_finish(record: SyncRecord) -> None:
        await notify_sync(notify, record, rule, configured=configured)

    gitops.on_finish = on_finish


async def attach(rt: Parts) -> asyncio.Task[None]:
    """Build and start everything a server runs; the returned task stops it all when cancelled."""
    auto = rt.automation = build(rt)
    try:
        await auto.sop.recover()
    except Exception:  # a bad record must not keep the server from starting; the lookout tries again
        log.exception("SOP: picking up runs left by a stopped process failed")
    watcher = auto.watcher = TaskWatcher(rt.db, rt.settings.notify, auto.notify)
    await _notify_syncs(rt, auto.notify)
    jobs: list[Awaitable[None]] = [auto.sop.watch(), watcher.run()]  # tasks may carry their own notify
    if rt.settings.schedules.enabled:
        jobs.append(auto.scheduler.run())
    auto._background = [asyncio.ensure_future(j) for j in jobs]

    async def hold() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await auto.close()

    return asyncio.create_task(hold(), name="automation")


async def reconfigure(rt: Parts) -> None:
    """Follow a reloaded config (``rt.settings``, ``rt.roles``): notification channels, retries, templates and
    the ``notify.tasks`` rule, ticket settings, SOP settings and roles, schedule settings, ``gitops.notify``.
    What starts from now on uses them; a delivery under way keeps its own, a SOP run reads them per step."""
    auto = rt.automation
    if auto is None:
        return
    s = rt.settings
    auto.notify.reconfigure(s.notify)
    auto.tickets.settings = s.tickets
    auto.sop.settings, auto.sop.roles, auto.sop.deps.settings = s, rt.roles, s
    auto.scheduler.settings, auto.scheduler.templates = s.schedules, s.notify.templates
    if auto.watcher is not None:
        auto.watcher.rule, auto.watcher.templates = s.notify.tasks, s.notify.templates
    await _notify_syncs(rt, auto.notify)


def of(rt: Parts) -> Automation:
    """The automation attached to a runtime (the server's); RuntimeError if none is."""
    auto = rt.automation
    if auto is None:
        raise RuntimeError("SOPs, schedules and notifications are not attached to this runtime")
    return auto
