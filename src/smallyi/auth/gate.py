"""The command gate: before a command reaches any host, check who asks, where, and what it runs.

One call for tasks, SOP steps and anything else that sends a command: the caller's role must grant
the permission on every target host's groups (RBAC), the command policy must not refuse it, and a
"dangerous" command becomes an approval request instead of running (:class:`Held`, an answer, not an
exception: every caller must say what a held command means for it). Refusals are audited.
``check_line`` is the same policy check for terminal input: a guard against mistakes, not a
security boundary (a shell can be made to run what a line filter never saw).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smallyi.audit.trail import AuditTrail
from smallyi.auth.caller import Caller
from smallyi.auth.rbac import Access, Perm
from smallyi.errors import Forbidden, PolicyDenied
from smallyi.inventory.hosts import HostSpec
from smallyi.policy.rules import Action, CommandPolicy, Verdict

log = logging.getLogger(__name__)


class Requests(Protocol):
    """Where a held command's approval request is written (:class:`smallyi.approvals.requests.Approvals`)."""

    async def request(self, *, requested_by: str, command: str, request: dict[str, Any], rule: str) -> int: ...


@dataclass(frozen=True, slots=True)
class Held:
    """The policy holds a command until another user approves request ``approval_id``; ``message`` says
    which rule and how to approve."""

    approval_id: int
    message: str


async def allow_hosts(audit: AuditTrail, caller: Caller, perm: Perm, hosts: Sequence[HostSpec], *, what: str) -> None:
    """Forbidden (and an audit record) unless an API ``caller`` holds ``perm`` on every host's groups: for
    what reaches hosts without a command to gate (a terminal, a log follow)."""
    access = caller.principal.access if caller.principal is not None else Access.full(caller.user)
    try:
        access.check_hosts(perm, [(h.name, h.permission_groups) for h in hosts])
    except Forbidden as exc:
        await audit.record("access.denied", actor=caller.user, client=caller.client, result="denied",
                           target=",".join(h.name for h in hosts[:20]), perm=perm.value, source="api",
                           detail={"kind": what, "reason": exc.message})
        raise


class CommandGate:
    def __init__(self, policy: CommandPolicy, audit: AuditTrail, requests: Requests) -> None:
        self.policy = policy
        self.audit = audit
        self.requests = requests

    async def check(
        self, command: str, hosts: Sequence[HostSpec], caller: Caller, *, perm: Perm = Perm.TASKS_RUN,
        request: dict[str, Any] | None = None, approved_by: str = "",
    ) -> Verdict | Held:
        """Raise Forbidden or PolicyDenied; return the allowing verdict, or :class:`Held` with the approval
        request it wrote.

        ``caller.principal`` None is an in-process caller (the local CLI, the scheduler, an SOP step): full
        rights, and the policy as for ``caller.role`` (default admin). ``approved_by`` runs an approved
        request. ``caller.person`` is who stands behind a user like ``sop:7:alice`` (they may not approve it).
        """
        user, principal, client, kind, person = caller.user, caller.principal, caller.client, caller.kind, caller.person
        access = principal.access if principal is not None else Access.full(user)
        target = ",".join(h.name for h in hosts[:20]) + (f" (+{len(hosts) - 20})" if len(hosts) > 20 else "")
        source = "api" if principal is not None and principal.token_kind != "local" else None  # noqa: S105
        try:
            access.check_hosts(perm, [(h.name, h.permission_groups) for h in hosts])
        except Forbidden as exc:
            await self.audit.record("access.denied", actor=user, client=client, target=target, result="denied",
                                    perm=perm.value, source=source, detail={"kind": kind, "reason": exc.message})
            raise
        groups = {g for h in hosts for g in h.groups}
        verdict = self.policy.check(command, role=caller.role or access.role, groups=groups)
        detail: dict[str, Any] = {"kind": kind, "command": command, "rule": verdict.rule, "reason": verdict.reason}
        if verdict.action is Action.DENY:
            await self.audit.record("policy.deny", actor=user, client=client, target=target, result="denied",
                                    perm=perm.value, source=source, detail=detail)
            log.info("policy refused %s's %s on %s: %s", user, kind, target, verdict.reason)
            raise PolicyDenied(verdict.reason)
        if verdict.action is Action.APPROVE and not approved_by:
            approval_id = await self.requests.request(
                requested_by=user, command=command, rule=verdict.reason,
                request={**(request or {}), "role": access.role, "kind": kind, "client": client,
                         **({"person": person} if person else {})})
            await self.audit.record("policy.approval_requested", actor=user, client=client, target=target,
                                    result="pending", perm=perm.value, source=source,
                                    detail={**detail, "approval": approval_id})
            return Held(approval_id, f"{verdict.reason}; it waits as approval {approval_id} until another user "
                                     f"with approvals.decide approves it (POST /api/v1/approvals/{approval_id}/approve)")
        return verdict

    def check_line(self, line: str, *, role: str, groups: Iterable[str]) -> Verdict:
        """The policy's verdict on one line of terminal input (a guard against mistakes only)."""
        return self.policy.check(line, role=role, groups=groups, fresh=False)
