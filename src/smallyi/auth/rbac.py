"""Roles, permissions and per-group grants: who may do what, and on which hosts. Pure.

A user holds one role, granted over some groups (``groups: [...]``) or over all of them (no groups).
A permission is either *scoped* (it acts on hosts: running a command, following logs, opening a
terminal, approving; or reads what hosts printed: the task archive): then every target host must be
in one of the granted groups, and a read shows only such hosts' records (:class:`HostScope`); or
*global* (editing the inventory, the audit trail): then holding the role is enough.

Routes name what they need with a :data:`Rule`: a permission, :data:`PUBLIC` (no login) or
:data:`SIGNED_IN` (any logged-in user, for their own things: identity, tokens, preferences).
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from smallyi.errors import ConfigError, Forbidden


class Perm(enum.StrEnum):
    """Every permission small-yi knows; custom roles pick from these (``tasks.*`` and ``*`` work)."""

    HOSTS_READ = "hosts.read"
    HOSTS_WRITE = "hosts.write"
    TASKS_READ = "tasks.read"
    TASKS_RUN = "tasks.run"
    TASKS_CANCEL = "tasks.cancel"
    LOGS_FOLLOW = "logs.follow"
    TERMINAL_OPEN = "terminal.open"
    TERMINAL_READ = "terminal.read"
    #: read every user's terminal sessions and recordings (terminal.read alone: one's own)
    TERMINAL_AUDIT = "terminal.audit"
    APPROVALS_DECIDE = "approvals.decide"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_PURGE = "audit.purge"
    RBAC_REPORT = "rbac.report"
    SECRETS_READ = "secrets.read"
    SECRETS_WRITE = "secrets.write"
    HOSTKEYS_WRITE = "hostkeys.write"
    SOP_READ = "sop.read"
    SOP_WRITE = "sop.write"
    SOP_RUN = "sop.run"
    SCHEDULES_READ = "schedules.read"
    SCHEDULES_WRITE = "schedules.write"
    GITOPS_READ = "gitops.read"
    GITOPS_WRITE = "gitops.write"
    GITOPS_SYNC = "gitops.sync"
    NOTIFY_READ = "notify.read"
    NOTIFY_WRITE = "notify.write"
    #: list and revoke every user's API tokens and login sessions
    TOKENS_MANAGE = "tokens.manage"


#: permissions that act on hosts, or read what they printed: only where a host is in a granted group
SCOPED = frozenset({Perm.TASKS_RUN, Perm.TASKS_READ, Perm.LOGS_FOLLOW, Perm.TERMINAL_OPEN, Perm.APPROVALS_DECIDE,
                    Perm.SOP_RUN})


class Open(enum.Enum):
    """Rules that are not permissions."""

    PUBLIC = "public"
    SIGNED_IN = "signed-in"


PUBLIC = Open.PUBLIC
SIGNED_IN = Open.SIGNED_IN
Rule = Perm | Open

_READS = {Perm.HOSTS_READ, Perm.TASKS_READ, Perm.SOP_READ, Perm.SCHEDULES_READ, Perm.GITOPS_READ}

BUILTIN_ROLES: dict[str, frozenset[Perm]] = {
    "admin": frozenset(Perm),
    "operator": frozenset({
        *_READS, Perm.TASKS_RUN, Perm.TASKS_CANCEL, Perm.LOGS_FOLLOW, Perm.TERMINAL_OPEN,
        Perm.TERMINAL_READ, Perm.APPROVALS_DECIDE, Perm.SOP_RUN, Perm.NOTIFY_READ,
    }),
    "viewer": frozenset(_READS),
    "auditor": frozenset({
        *_READS, Perm.TERMINAL_READ, Perm.TERMINAL_AUDIT, Perm.AUDIT_READ, Perm.AUDIT_EXPORT, Perm.RBAC_REPORT,
        Perm.SECRETS_READ, Perm.NOTIFY_READ,
    }),
}
ALL_GROUPS: tuple[str, ...] = ()


def expand(patterns: Iterable[str], *, where: str) -> frozenset[Perm]:
    """Permission names and wildcards (``tasks.*``, ``*``) → permissions; ConfigError naming ``where``."""
    out: set[Perm] = set()
    for pat in patterns:
        hits = [p for p in Perm if fnmatch.fnmatchcase(p.value, pat)]
        if not hits:
            known = ", ".join(p.value for p in Perm)
            raise ConfigError(f"{where}: unknown permission {pat!r}; known permissions: {known}")
        out.update(hits)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class RoleBook:
    """The built-in roles plus the config's custom ones (``roles:``)."""

    roles: Mapping[str, frozenset[Perm]]

    @classmethod
    def build(cls, custom: Mapping[str, Sequence[str]]) -> RoleBook:
        roles = dict(BUILTIN_ROLES)
        for name, perms in custom.items():
            if name in BUILTIN_ROLES:
                raise ConfigError(f"roles.{name}: {name!r} is a built-in role; pick another name")
            roles[name] = expand(perms, where=f"roles.{name}.permissions")
        return cls(roles)

    def perms(self, role: str) -> frozenset[Perm]:
        try:
            return self.roles[role]
        except KeyError:
            raise ConfigError(
                f"unknown role {role!r}; known roles: {', '.join(sorted(self.roles))}"
            ) from None

    def access(self, username: str, role: str, groups: Sequence[str] = ALL_GROUPS) -> Access:
        """What ``username`` may do holding ``role`` over ``groups`` (empty: every group)."""
        return Access(username, role, tuple(groups), self.perms(role))


@dataclass(frozen=True, slots=True)
class HostScope:
    """Whose records a read may show: every host's (``groups`` None) or only hosts in one of ``groups``.

    The archive applies it in SQL (``tasks.queries``); callers get one from :meth:`Access.scope`.
    """

    groups: tuple[str, ...] | None

    @property
    def everywhere(self) -> bool:
        return self.groups is None

    def allows(self, host_groups: Iterable[str]) -> bool:
        return self.groups is None or any(g in self.groups for g in host_groups)

    def describe(self) -> str:
        return "every group" if self.groups is None else f"group(s) {', '.join(self.groups) or '(none)'}"


#: every host: the local CLI, the scheduler and the runner itself read the whole archive
EVERY_HOST = HostScope(None)


@dataclass(frozen=True, slots=True)
class Access:
    """A user's effective rights: one role over some groups (``groups`` empty: all of them)."""

    username: str
    role: str
    groups: tuple[str, ...]
    perms: frozenset[Perm] = field(repr=False)

    @classmethod
    def full(cls, username: str) -> Access:
        """Everything everywhere: the local CLI, whose user can read the config and the database anyway."""
        return cls(username, "admin", ALL_GROUPS, BUILTIN_ROLES["admin"])

    @classmethod
    def none(cls, username: str = "") -> Access:
        return cls(username, "", ALL_GROUPS, frozenset())

    @property
    def everywhere(self) -> bool:
        return not self.groups

    def allows(self, rule: Rule) -> bool:
        """True if this rule lets the user in at all (for a scoped permission: on some group)."""
        if isinstance(rule, Open):
            return True
        return rule in self.perms

    def check(self, rule: Rule) -> None:
        """Forbidden unless :meth:`allows`; the message names the permission and the role."""
        if not self.allows(rule):
            raise Forbidden(
                f"user {self.username!r} (role {self.role or 'none'}) lacks permission {rule.value}; "
                "ask an admin for a role that grants it"
            )

    def scope(self, perm: Perm) -> HostScope:
        """The hosts whose records ``perm`` lets this user read; Forbidden without ``perm`` at all.

        A global permission, or a role granted over every group, reads every host; otherwise only
        hosts in the granted groups.
        """
        self.check(perm)
        if perm not in SCOPED or self.everywhere:
            return EVERY_HOST
        return HostScope(self.groups)

    def host_allowed(self, perm: Perm, host_groups: Iterable[str]) -> bool:
        if perm not in self.perms:
            return False
        if perm not in SCOPED or self.everywhere:
            return True
        return any(g in self.groups for g in host_groups)

    def check_hosts(self, perm: Perm, hosts: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Forbidden unless every (host name, its groups) is within the granted groups."""
        self.check(perm)
        outside = [name for name, groups in hosts if not self.host_allowed(perm, groups)]
        if outside:
            shown = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
            raise Forbidden(
                f"user {self.username!r} may use {perm.value} only on hosts in group(s) "
                f"{', '.join(self.groups)}; not on {shown}"
            )
