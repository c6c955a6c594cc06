"""Roles, permissions and group-scoped grants (smallyi.auth.rbac), and the permission-matrix report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smallyi.auth import report
from smallyi.auth.rbac import PUBLIC, SIGNED_IN, Access, Perm, RoleBook
from smallyi.errors import ConfigError, Forbidden

BOOK = RoleBook.build({"deployer": ["tasks.*", "hosts.read"]})


def test_builtin_roles_grant_what_their_names_say() -> None:
    """Admin holds everything; a viewer only reads; an auditor reads the audit trail but cannot run."""
    assert BOOK.perms("admin") == frozenset(Perm)
    assert Perm.TASKS_RUN not in BOOK.perms("viewer") and Perm.TASKS_READ in BOOK.perms("viewer")
    assert Perm.AUDIT_EXPORT in BOOK.perms("auditor") and Perm.TASKS_RUN not in BOOK.perms("auditor")
    assert Perm.TASKS_RUN in BOOK.perms("operator") and Perm.HOSTS_WRITE not in BOOK.perms("operator")


def test_custom_roles_expand_wildcards_and_unknown_names_are_config_errors() -> None:
    """``tasks.*`` expands to every task permission; a misspelt permission or a built-in name is refused."""
    assert BOOK.perms("deployer") == {Perm.TASKS_READ, Perm.TASKS_RUN, Perm.TASKS_CANCEL, Perm.HOSTS_READ}
    with pytest.raises(ConfigError, match="unknown permission 'task.run'"):
        RoleBook.build({"x": ["task.run"]})
    with pytest.raises(ConfigError, match="built-in role"):
        RoleBook.build({"admin": ["*"]})
    with pytest.raises(ConfigError, match="unknown role 'opertor'"):
        BOOK.perms("opertor")


def test_a_scoped_permission_covers_only_hosts_in_the_granted_groups() -> None:
    """An operator of prod may run on hosts in prod (also when in other groups too), not on others."""
    op = BOOK.access("op", "operator", ["prod"])
    op.check_hosts(Perm.TASKS_RUN, [("a", ["prod"]), ("b", ["prod", "web"])])
    with pytest.raises(Forbidden, match="not on c"):
        op.check_hosts(Perm.TASKS_RUN, [("a", ["prod"]), ("c", ["dev"])])
    with pytest.raises(Forbidden, match="not on d"):
        op.check_hosts(Perm.TASKS_RUN, [("d", [])])


def test_global_permissions_ignore_groups_and_missing_ones_name_the_permission() -> None:
    """Reading hosts is not group-scoped; a missing permission is Forbidden naming it and the role."""
    op = BOOK.access("op", "operator", ["prod"])
    op.check_hosts(Perm.HOSTS_READ, [("c", ["dev"])])
    with pytest.raises(Forbidden, match="lacks permission hosts.write"):
        op.check(Perm.HOSTS_WRITE)
    assert op.allows(PUBLIC) and op.allows(SIGNED_IN) and not Access.none("x").allows(Perm.HOSTS_READ)


def test_reading_the_archive_is_scoped_to_the_granted_groups() -> None:
    """tasks.read over prod reads only prod hosts' records; over every group (admin, auditor), every host's;
    without tasks.read at all, nothing (Forbidden)."""
    op = BOOK.access("op", "operator", ["prod"])
    scope = op.scope(Perm.TASKS_READ)
    assert scope.groups == ("prod",) and scope.allows(["prod", "web"]) and not scope.allows(["dev"])
    with pytest.raises(Forbidden, match="not on c"):
        op.check_hosts(Perm.TASKS_READ, [("c", ["dev"])])
    assert BOOK.access("aud", "auditor").scope(Perm.TASKS_READ).everywhere
    assert Access.full("cli:root").scope(Perm.TASKS_READ).everywhere
    assert op.scope(Perm.HOSTS_READ).everywhere  # a global permission reads everything
    with pytest.raises(Forbidden, match="tasks.read"):
        Access.none("x").scope(Perm.TASKS_READ)


def test_full_access_is_admin_everywhere() -> None:
    """The local CLI's access passes every check on every host."""
    a = Access.full("cli:root")
    a.check_hosts(Perm.TERMINAL_OPEN, [("x", ["anything"]), ("y", [])])


def test_report_flags_admins_unused_grants_and_broad_roles() -> None:
    """The report flags too many admins, an implicit admin, an inactive user, unused grants and a role wider
    than its users' use."""
    now = datetime(2026, 11, 27, tzinfo=UTC)
    users = [report.UserRow("a1", "admin", ()), report.UserRow("a2", "admin", (), implicit_role=True),
             report.UserRow("a3", "admin", ()), report.UserRow("op", "operator", ("prod",)),
             report.UserRow("gone", "viewer", (), disabled=True), report.UserRow("v", "viewer", ())]
    rep = report.build(users, BOOK, last_use={("op", "tasks.run"): now - timedelta(days=1)},
                       last_login={u: now for u in ("a1", "a2", "a3", "op")}, now=now, max_admins=2,
                       unused_days=30)
    kinds = {(f["kind"], f["subject"]) for f in rep["findings"]}
    assert ("too_many_admins", "admin") in kinds and ("implicit_admin", "a2") in kinds
    assert ("inactive_user", "v") in kinds and ("unused_grants", "op") in kinds
    broad = next(f for f in rep["findings"] if f["kind"] == "role_broader_than_use")
    assert broad["subject"] == "operator" and "terminal.open" in broad["message"] and "tasks.run" not in broad["message"]
    assert [r["user"] for r in rep["matrix"]] == ["a1", "a2", "a3", "op", "v"]
    op = next(r for r in rep["matrix"] if r["user"] == "op")
    run = next(p for p in op["permissions"] if p["name"] == "tasks.run")
    assert run["scope"] == ["prod"] and run["last_used"]
