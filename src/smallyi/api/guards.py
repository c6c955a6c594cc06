"""Access hooks where the hosts are only known inside the handler: the same ``Access`` object as the
route's ``needs(...)``. ``allow_hosts`` for the long-lived WebSockets (terminal, log follow), refusals
audited; ``ArchiveScope`` for every read of the task archive (which hosts' results and output the
caller may see, applied by the archive in SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends

from smallyi.api.deps import current_principal
from smallyi.auth import gate
from smallyi.auth.caller import Caller
from smallyi.auth.rbac import HostScope, Perm
from smallyi.auth.service import Principal
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.terminal.line_guard import LineGuard


async def allow_hosts(state: Runtime, user: Principal, perm: Perm, hosts: Sequence[HostSpec], *, client: str,
                      what: str) -> None:
    """Forbidden (and an audit record) unless ``user`` holds ``perm`` on every host's groups."""
    await gate.allow_hosts(state.audit, Caller.of(user, client=client), perm, hosts, what=what)


def archive_scope(user: Principal) -> HostScope:
    """The hosts whose results and output ``user`` may read (tasks.read over their groups)."""
    return user.access.scope(Perm.TASKS_READ)


async def _archive_scope(user: Annotated[Principal, Depends(current_principal)]) -> HostScope:
    return archive_scope(user)


#: a handler parameter: the caller's :class:`HostScope` for reading the archive
ArchiveScope = Annotated[HostScope, Depends(_archive_scope)]


def terminal_guard(state: Runtime, user: Principal, host: HostSpec) -> LineGuard | None:
    """The policy's line guard for a terminal on ``host`` (None when no rule applies to this user there)."""
    policy = state.gate.policy
    if not policy.applicable(user.role, host.groups):
        return None
    return LineGuard(lambda line: policy.check(line, role=user.role, groups=host.groups))
