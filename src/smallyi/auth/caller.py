"""Who asks for a command to run, as one value instead of a handful of keyword arguments.

The API, the CLI, the scheduler and SOP steps all submit tasks; what differs between them is only
this: whose name the task carries, whose rights and policy role apply, where the request came from,
and what an approval request it may become says about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from smallyi.auth.service import Principal


@dataclass(frozen=True, slots=True)
class Caller:
    #: the task's ``created_by``: a username, or ``schedule:NAME`` / ``sop:RUN:USER`` for automation
    user: str
    #: an API caller's identity and rights; None: an in-process caller (local CLI, scheduler) with full rights
    principal: Principal | None = None
    #: the client address (or ``scheduler``, ``sop-run:N``) for the audit trail
    client: str = ""
    #: the policy role to judge the command as (None: the principal's, else admin)
    role: str | None = None
    #: what an approval request made for it says it is: ``task``, ``schedule``, ``sop-command``, ...
    kind: str = "task"
    #: who stands behind an automated ``user`` (they may not approve their own request)
    person: str = ""

    @classmethod
    def of(cls, principal: Principal, *, client: str) -> Caller:
        """An API caller, as themselves."""
        return cls(principal.username, principal, client=client)
