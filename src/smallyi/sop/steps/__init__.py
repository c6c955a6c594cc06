"""Step handlers by type: each takes a :class:`~smallyi.sop.steps.base.StepCall`, returns an Outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from smallyi.sop.steps import calls, hosts, tickets, waits, web
from smallyi.sop.steps.base import Outcome, StepCall

Handler = Callable[[StepCall], Awaitable[Outcome]]

HANDLERS: dict[str, Handler] = {
    "exec": hosts.run, "script": hosts.run, "template": hosts.run, "file": hosts.run,
    "http": web.run, "wait": waits.run_wait, "approval": waits.run_approval, "notify": waits.run_notify,
    "ticket": tickets.run_ticket, "if": tickets.run_if, "sop": calls.run,
}
#: types whose handler may pick up again after a restart (nothing on hosts is half done)
RESUMABLE = frozenset({"wait", "approval"})
