"""Access and audit hooks for the long-lived WebSockets (terminal, log follow), where the target hosts
are only known inside the handler: the same ``Access`` check as tasks, refusals audited."""

from __future__ import annotations

from collections.abc import Sequence

from smallyi.auth.rbac import Perm
from smallyi.auth.service import Principal
from smallyi.errors import Forbidden
from smallyi.inventory.hosts import HostSpec
from smallyi.policy.terminal import LineGuard
from smallyi.runtime import Runtime


async def allow_hosts(state: Runtime, user: Principal, perm: Perm, hosts: Sequence[HostSpec], *, client: str,
                      what: str) -> None:
    """Forbidden (and an audit record) unless ``user`` holds ``perm`` on every host's groups."""
    try:
        user.access.check_hosts(perm, [(h.name, h.groups) for h in hosts])
    except Forbidden as exc:
        await state.audit.record("access.denied", actor=user.username, client=client, result="denied",
                                 target=",".join(h.name for h in hosts[:20]), perm=perm.value, source="api",
                                 detail={"kind": what, "reason": exc.message})
        raise


def terminal_guard(state: Runtime, user: Principal, host: HostSpec) -> LineGuard | None:
    """The policy's line guard for a terminal on ``host`` (None when no rule applies to this user there)."""
    policy = state.gate.policy
    if not policy.applicable(user.role, host.groups):
        return None
    return LineGuard(lambda line: policy.check(line, role=user.role, groups=host.groups))
