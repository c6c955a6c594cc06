"""InventoryService against a real SQLite file (and once against PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from smallyi.config import parse_settings
from smallyi.errors import Conflict, InputError, NotFound
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import Selector
from smallyi.inventory.service import InventoryService
from smallyi.inventory.status import latest_status_is
from smallyi.storage.db import Database, open_database
from smallyi.storage.models import Host, Result, Task


async def _open(source_yaml: str, base: Path) -> Database:
    return await open_database(parse_settings(source_yaml, base_dir=base))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await _open(f"database:\n  driver: sqlite3\n  source: {tmp_path / 'inv.db'}\n", tmp_path)
    yield database
    await database.close()


@pytest.fixture
def inv(db: Database) -> InventoryService:
    return InventoryService(db)


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    seen: list[str] = []

    def hook(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", hook)


def web(n: int, **kw: Any) -> HostSpec:
    return HostSpec(f"web-{n}", f"10.0.0.{n}", **{"groups": ("web",), "labels": {"env": "prod"}, **kw})


# -- upsert -------------------------------------------------------------------------------------


async def test_upsert_reports_created_updated_unchanged(inv: InventoryService) -> None:
    """Upsert by name: new hosts are created, equal ones unchanged, changed ones updated."""
    report = await inv.upsert([web(1), web(2)], source="import")
    assert (report.created, report.updated, report.unchanged) == (["web-1", "web-2"], [], [])
    report = await inv.upsert([web(1), web(2, port=2222), web(3)], source="import")
    assert (report.created, report.updated, report.unchanged) == (["web-3"], ["web-2"], ["web-1"])
    assert (await inv.get_host("web-2")).port == 2222
    assert report.to_dict()["counts"] == {"created": 1, "updated": 1, "unchanged": 1}


async def test_upsert_replaces_groups_and_adds_default_groups(inv: InventoryService) -> None:
    """A host's groups become the listed ones plus default_groups; groups are created as needed."""
    await inv.upsert([web(1, groups=("a", "b"))], source="manual")
    report = await inv.upsert([web(1, groups=("b", "c"))], source="manual", default_groups=["fleet"])
    assert report.updated == ["web-1"]
    assert (await inv.get_host("web-1")).groups == ("b", "c", "fleet")
    counts = {g.name: g.host_count for g in await inv.list_groups()}
    assert counts["a"] == 0 and counts["fleet"] == 1


async def test_upsert_duplicate_names_name_them(inv: InventoryService) -> None:
    """Duplicate names in one batch are an InputError naming each, and nothing is written."""
    with pytest.raises(InputError, match="web-1, web-2") as info:
        await inv.upsert([web(1), web(2), web(1), web(2), web(3)], source="import")
    assert info.value.field == "name"
    assert await inv.list_hosts() == ([], 0)


async def test_upsert_is_all_or_nothing(inv: InventoryService) -> None:
    """One invalid host (its index and field named) or default group keeps the whole batch out of the database."""
    with pytest.raises(InputError, match="port 0 is out of range") as info:
        await inv.upsert([web(1), web(2, port=0)], source="import")
    assert info.value.field == "1.port"
    with pytest.raises(InputError, match="host name") as info:
        await inv.upsert([web(1), HostSpec("bad name", "10.0.0.9")], source="import")
    assert info.value.field == "1.name"
    with pytest.raises(InputError, match="group name 'bad group'") as info:
        await inv.upsert([web(1)], source="import", default_groups=["bad group"])
    assert info.value.field == "group"
    assert (await inv.list_hosts())[1] == 0


async def test_upsert_dry_run_writes_nothing(inv: InventoryService) -> None:
    """A dry run reports what would change and leaves the database as it was."""
    report = await inv.upsert([web(1)], source="import", dry_run=True)
    assert report.created == ["web-1"]
    assert (await inv.list_hosts())[1] == 0 and await inv.list_groups() == []


async def test_upsert_thousands_in_few_statements(inv: InventoryService, db: Database) -> None:
    """3000 hosts are inserted, then re-checked, with a bounded number of SQL statements (no per-host loop)."""
    specs = [HostSpec(f"h-{i:05d}", f"10.1.{i // 256}.{i % 256}", groups=("fleet", f"g{i % 4}"),
                      labels={"n": str(i % 7)}) for i in range(3000)]
    with count_statements(db) as first:
        report = await inv.upsert(specs, source="import")
    assert len(report.created) == 3000
    with count_statements(db) as second:
        report = await inv.upsert(specs, source="import")
    assert len(report.unchanged) == 3000
    assert len(first) < 60 and len(second) < 60, (len(first), len(second))
    assert (await inv.list_hosts(group="g1"))[1] == 750


# -- reading -------------------------------------------------------------------------------------


async def test_list_hosts_filters_and_pages(inv: InventoryService) -> None:
    """list_hosts filters by group, every label and search text, pages by name, and counts the total."""
    await inv.upsert([
        web(1), web(2, labels={"env": "staging"}), web(3, description="the Canary box"),
        HostSpec("db-1", "10.0.9.1", labels={"env": "prod", "role.k8s/x": "db"}, groups=("db",)),
    ], source="import")
    page, total = await inv.list_hosts(group="web", limit=2, offset=1)
    assert [h.name for h in page] == ["web-2", "web-3"] and total == 3
    assert [h.name for h in (await inv.list_hosts(labels={"env": "prod"}))[0]] == ["db-1", "web-1", "web-3"]
    assert [h.name for h in (await inv.list_hosts(labels={"role.k8s/x": "db"}))[0]] == ["db-1"]
    assert [h.name for h in (await inv.list_hosts(search="canary"))[0]] == ["web-3"]
    assert [h.name for h in (await inv.list_hosts(search="10.0.9"))[0]] == ["db-1"]
    assert (await inv.list_hosts(search="%"))[1] == 0
    hosts = await inv.all_hosts()
    assert [h.groups for h in hosts] == [("db",), ("web",), ("web",), ("web",)]


async def test_list_hosts_unknown_group(inv: InventoryService) -> None:
    """Filtering by a group that does not exist is NotFound naming it, not an empty page."""
    with pytest.raises(NotFound, match="group 'nope' does not exist"):
        await inv.list_hosts(group="nope")


async def test_resolve_selects_enabled_hosts(inv: InventoryService) -> None:
    """resolve applies the selector to the stored hosts: group, names, labels; disabled hosts left out."""
    await inv.upsert([web(1), web(2, labels={"env": "dev"}), web(3, enabled=False)], source="import")
    assert [h.name for h in await inv.resolve(Selector(group="web"))] == ["web-1", "web-2"]
    assert [h.name for h in await inv.resolve(Selector(hosts=("web-2", "web-1")))] == ["web-1", "web-2"]
    assert [h.name for h in await inv.resolve(Selector(labels={"env": "prod"}))] == ["web-1"]
    assert [h.name for h in await inv.resolve(Selector(group="web", labels={"env": "dev"}))] == ["web-2"]


async def test_resolve_names_what_does_not_exist(inv: InventoryService) -> None:
    """An unknown group, or unknown host names (all of them), are NotFound errors that name them."""
    await inv.upsert([web(1)], source="import")
    with pytest.raises(NotFound, match="group 'prod' does not exist"):
        await inv.resolve(Selector(group="prod"))
    with pytest.raises(NotFound, match="web-7, web-8") as info:
        await inv.resolve(Selector(hosts=("web-1", "web-7", "web-8")))
    assert info.value.field == "target.hosts"


async def test_resolve_nothing_matches(inv: InventoryService) -> None:
    """A selector that matches no enabled host is an InputError saying so (and how many are disabled)."""
    await inv.upsert([web(1, enabled=False)], source="import")
    await inv.create_group("empty")
    with pytest.raises(InputError, match="no enabled host matches group empty$"):
        await inv.resolve(Selector(group="empty"))
    with pytest.raises(InputError, match=r"matches group web \(1 matching host\(s\) are disabled\)"):
        await inv.resolve(Selector(group="web"))
    assert await inv.resolve(Selector(group="web"), allow_empty=True) == []


# -- single hosts --------------------------------------------------------------------------------


async def test_update_host(inv: InventoryService) -> None:
    """update_host changes only the given fields; groups and labels replace the whole set."""
    await inv.upsert([web(1, user="deploy")], source="manual")
    host = await inv.update_host("web-1", port=2200, labels={"env": "dev"}, groups=["canary"], enabled=False)
    assert (host.port, host.user, host.labels, host.groups, host.enabled) == (
        2200, "deploy", {"env": "dev"}, ("canary",), False)
    assert await inv.get_host("web-1") == host


async def test_update_host_rename_and_errors(inv: InventoryService) -> None:
    """A host can be renamed; a taken name is a Conflict; bad fields and values are InputErrors."""
    await inv.upsert([web(1), web(2)], source="manual")
    assert (await inv.update_host("web-1", name="web-01")).name == "web-01"
    assert [h.name for h in await inv.resolve(Selector(group="web"))] == ["web-01", "web-2"]
    with pytest.raises(Conflict, match="'web-2' already exists"):
        await inv.update_host("web-01", name="web-2")
    with pytest.raises(InputError, match="cannot change connector"):
        await inv.update_host("web-01", connector="local")
    with pytest.raises(InputError, match="port 70000") as info:
        await inv.update_host("web-01", port=70000)
    assert info.value.field == "port"
    with pytest.raises(NotFound, match="'web-9'"):
        await inv.update_host("web-9", port=22)


async def test_delete_host(inv: InventoryService) -> None:
    """A deleted host is gone from lists and groups; deleting it again is NotFound."""
    await inv.upsert([web(1), web(2)], source="manual")
    await inv.delete_host("web-1")
    assert [h.name for h in (await inv.list_hosts())[0]] == ["web-2"]
    assert {g.name: g.host_count for g in await inv.list_groups()} == {"web": 1}
    with pytest.raises(NotFound):
        await inv.delete_host("web-1")


# -- groups --------------------------------------------------------------------------------------


async def test_group_lifecycle(inv: InventoryService) -> None:
    """Create, rename (members follow), describe, and delete (hosts stay) a group."""
    await inv.upsert([web(1), web(2)], source="manual")
    created = await inv.create_group("canary", "first to get changes")
    assert created.to_dict() == {"name": "canary", "description": "first to get changes", "host_count": 0}
    with pytest.raises(Conflict):
        await inv.create_group("canary")
    with pytest.raises(InputError, match="group name"):
        await inv.create_group("bad group")
    renamed = await inv.rename_group("web", "frontend")
    assert (renamed.name, renamed.host_count) == ("frontend", 2)
    assert (await inv.get_host("web-1")).groups == ("frontend",)
    with pytest.raises(Conflict):
        await inv.rename_group("frontend", "canary")
    await inv.delete_group("frontend")
    assert [g.name for g in await inv.list_groups()] == ["canary"]
    assert (await inv.get_host("web-1")).groups == ()
    with pytest.raises(NotFound):
        await inv.delete_group("frontend")


async def test_set_members(inv: InventoryService) -> None:
    """set_members adds and removes hosts at once; unknown hosts or groups change nothing."""
    await inv.upsert([web(1), web(2), web(3)], source="manual")
    await inv.create_group("canary")
    assert await inv.set_members("canary", add=["web-1", "web-2"]) == ["web-1", "web-2"]
    assert await inv.set_members("canary", add=["web-3", "web-1"], remove=["web-2"]) == ["web-1", "web-3"]
    with pytest.raises(NotFound, match="web-8, web-9"):
        await inv.set_members("canary", add=["web-2", "web-9", "web-8"])
    with pytest.raises(NotFound, match="group 'nope'"):
        await inv.set_members("nope", add=["web-1"])
    with pytest.raises(InputError, match="both added and removed"):
        await inv.set_members("canary", add=["web-1"], remove=["web-1"])
    assert await inv.set_members("canary") == ["web-1", "web-3"]


# -- the server itself ---------------------------------------------------------------------------


async def test_ensure_local_host_is_idempotent(inv: InventoryService, db: Database) -> None:
    """The server registers itself as host local (group local, local connector) once, even if called concurrently."""
    results = await asyncio.gather(*(InventoryService(db).ensure_local_host() for _ in range(3)))
    assert sorted(results) == [False, False, True]
    assert await inv.ensure_local_host() is False
    local = await inv.get_host("local")
    assert (local.address, local.connector, local.groups) == ("127.0.0.1", "local", ("local",))
    await inv.update_host("local", description="edited")
    await inv.ensure_local_host()
    assert (await inv.get_host("local")).description == "edited"


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_inventory_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """Upsert, label filters, resolve, groups, the local host and the latest-status filter work the same
    on PostgreSQL."""
    db = await _open(f"database:\n  driver: postgres\n  source: {pg_url}\n", tmp_path)
    try:
        inv = InventoryService(db)
        assert await inv.ensure_local_host() is True and await inv.ensure_local_host() is False
        specs = [web(i, labels={"env": "prod" if i % 2 else "dev"}) for i in range(1, 1201)]
        assert len((await inv.upsert(specs, source="import")).created) == 1200
        assert len((await inv.upsert(specs, source="import")).unchanged) == 1200
        assert (await inv.list_hosts(group="web", labels={"env": "dev"}, search="web-1"))[1] == 156
        assert len(await inv.resolve(Selector(labels={"env": "prod"}))) == 600
        with pytest.raises(InputError):
            await inv.upsert([web(1), web(1)], source="import")
        await inv.create_group("canary")
        assert await inv.set_members("canary", add=["web-1", "local"]) == ["local", "web-1"]
        counts = {g.name: g.host_count for g in await inv.list_groups()}
        assert counts == {"canary": 2, "local": 1, "web": 1200}
        await _results(db, [("web-1", "failed"), ("web-2", "failed"), ("web-2", "success"), ("web-3", "running")])
        assert [h.name for h in (await inv.list_hosts(status="failed"))[0]] == ["web-1"]
        assert (await inv.list_hosts(status="never", group="web"))[1] == 1198
    finally:
        await db.close()


# -- latest status ------------------------------------------------------------------------------


async def _results(db: Database, rows: list[tuple[str, str]]) -> None:
    """One task per (host, status), in order: later rows are later results."""
    async with db.session.begin() as s:
        for i, (name, status) in enumerate(rows, start=1):
            await s.execute(insert(Task).values(id=i, command="x", status="success", timeout=60.0, concurrency=1))
            await s.execute(insert(Result).values(task_id=i, host_name=name, status=status))


async def test_list_hosts_filters_by_latest_status_in_sql(inv: InventoryService, db: Database) -> None:
    """status= keeps hosts whose most recent finished result has it (unfinished ones ignored, `never` for
    none), pages and counts in SQL; an unknown status is an InputError naming the field."""
    await inv.upsert([web(1), web(2), web(3), web(4), HostSpec("db-1", "10.0.9.1", groups=("db",))],
                     source="import")
    await _results(db, [("web-1", "failed"), ("web-1", "success"), ("web-2", "success"), ("web-2", "failed"),
                        ("web-3", "running"), ("db-1", "failed"), ("db-1", "pending"), ("gone-1", "failed")])

    def names(found: tuple[list[HostSpec], int]) -> tuple[list[str], int]:
        return [h.name for h in found[0]], found[1]

    assert names(await inv.list_hosts(status="failed")) == (["db-1", "web-2"], 2)
    assert names(await inv.list_hosts(status="success")) == (["web-1"], 1)
    assert names(await inv.list_hosts(status="never")) == (["web-3", "web-4"], 2)
    assert names(await inv.list_hosts(status="failed", group="web")) == (["web-2"], 1)
    assert names(await inv.list_hosts(status="failed", limit=1, offset=1)) == (["web-2"], 2)
    assert names(await inv.list_hosts(status="timeout")) == ([], 0)
    with pytest.raises(InputError, match="'broken' is not a host status") as info:
        await inv.list_hosts(status="broken")
    assert info.value.field == "status"


def _plan_sql(dialect: Any) -> str:
    q = select(func.count()).select_from(Host).where(latest_status_is("failed"))
    return str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def test_latest_status_is_one_index_step_per_host(db: Database) -> None:
    """The status filter reads each host's latest result through the (host_name, id) index, without
    sorting a host's results (a million results would otherwise be read and sorted)."""
    async with db.engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in await conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + _plan_sql(conn.dialect)))
    assert "USING INDEX ix_results_host_id (host_name=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
