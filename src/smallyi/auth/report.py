"""The permission-matrix report: who can do what on which groups, and findings against least privilege.

Pure: users, roles and the audit trail's last use of each (user, permission) in; a report out.
Only actions are audited, not reads, so "unused" is judged on the permissions whose use leaves a
record (:data:`TRACKED`); the others are listed but never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smallyi.auth.rbac import SCOPED, Perm, RoleBook
from smallyi.timestamps import iso

#: permissions whose every use leaves an audit record
TRACKED = frozenset(Perm) - {Perm.HOSTS_READ, Perm.TASKS_READ, Perm.TERMINAL_READ, Perm.TERMINAL_AUDIT, Perm.AUDIT_READ,
                             Perm.RBAC_REPORT, Perm.SECRETS_READ, Perm.SOP_READ, Perm.SCHEDULES_READ,
                             Perm.GITOPS_READ, Perm.NOTIFY_READ}


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    role: str
    groups: tuple[str, ...]
    disabled: bool = False
    #: the config gave no role (so admin by default)
    implicit_role: bool = False


def build(
    users: Sequence[UserRow], roles: RoleBook, *, last_use: Mapping[tuple[str, str], datetime],
    last_login: Mapping[str, datetime], now: datetime, max_admins: int, unused_days: int,
) -> dict[str, Any]:
    """The report as a JSON-ready dict: ``matrix`` (per user), ``roles`` and ``findings``."""
    since = now - timedelta(days=unused_days)
    active = [u for u in users if not u.disabled]
    findings: list[dict[str, str]] = []

    def find(kind: str, subject: str, message: str) -> None:
        findings.append({"kind": kind, "subject": subject, "message": message})

    admins = [u.username for u in active if u.role == "admin"]
    if len(admins) > max_admins:
        find("too_many_admins", "admin", (
            f"{len(admins)} users hold admin, more than audit.max_admins ({max_admins}): {', '.join(admins)}; "
            "give day-to-day users operator or viewer"))
    matrix = []
    for u in sorted(active, key=lambda u: u.username):
        perms = sorted(roles.perms(u.role)) if u.role in roles.roles else []
        used = {p: iso(last_use[(u.username, p)]) for p in perms if (u.username, p) in last_use}
        matrix.append({
            "user": u.username, "role": u.role, "groups": list(u.groups) or ["*"],
            "permissions": [{"name": p.value, "scope": (list(u.groups) or ["*"]) if p in SCOPED else ["*"],
                             "last_used": used.get(p)} for p in perms],
            "last_login": iso(last_login.get(u.username)),
        })
        if u.role not in roles.roles:
            find("unknown_role", u.username, f"user {u.username} holds unknown role {u.role!r}: it grants nothing")
            continue
        if u.implicit_role:
            find("implicit_admin", u.username, (
                f"user {u.username} has no role in the config and so is admin; write role: explicitly"))
        seen = last_login.get(u.username)
        if seen is None or seen < since:
            when = "never logged in" if seen is None else f"last logged in {seen.date().isoformat()}"
            find("inactive_user", u.username, f"user {u.username} {when} (in {unused_days} days); disable them")
        unused = [p.value for p in perms if p in TRACKED and (u.username, p.value) not in last_use]
        if unused and seen is not None:
            find("unused_grants", u.username, (
                f"user {u.username} (role {u.role}) did not use {', '.join(unused)} in {unused_days} days"))
    role_rows = []
    for name, granted in sorted(roles.roles.items()):
        holders = [u.username for u in active if u.role == name]
        role_rows.append({"role": name, "permissions": sorted(p.value for p in granted), "users": holders})
        if not holders or name == "admin":
            continue
        unused = sorted(p.value for p in granted if p in TRACKED
                        and not any((h, p.value) in last_use for h in holders))
        if unused:
            find("role_broader_than_use", name, (
                f"role {name} grants {', '.join(unused)}, which none of its {len(holders)} user(s) used in "
                f"{unused_days} days; consider a narrower role"))
    return {"generated_at": iso(now), "window_days": unused_days, "matrix": matrix, "roles": role_rows,
            "findings": findings}
