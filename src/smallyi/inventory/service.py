"""Hosts and groups kept in the database: bulk upsert, queries, selector resolution, group edits.

Every write is one transaction: a batch is stored whole or not at all. Bulk paths read and write in
chunks (one statement per chunk of names), never one query per host, so a 10,000-host import takes
a handful of round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.errors import Conflict, InputError, NotFound
from smallyi.inventory.hosts import HostSpec, check_name
from smallyi.inventory.importers.fields import spec_problems
from smallyi.inventory.selectors import Selector, missing_names, select_hosts
from smallyi.storage.db import Database
from smallyi.storage.models import Group, Host, HostGroup, utcnow

#: names per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits
CHUNK = 500
LOCAL = HostSpec(name="local", address="127.0.0.1", groups=("local",), connector="local",
                 description="the small-yi server itself")
#: fields ``update_host`` may change
EDITABLE = ("name", "address", "port", "user", "labels", "groups", "description", "enabled")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an upsert did, by host name (sorted)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "counts": {"created": len(self.created), "updated": len(self.updated),
                       "unchanged": len(self.unchanged)},
        }


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    description: str
    host_count: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "host_count": self.host_count}


def host_dict(spec: HostSpec) -> dict[str, Any]:
    """The JSON shape of a host, shared by the API and the CLI."""
    return {
        "name": spec.name, "address": spec.address, "port": spec.port, "user": spec.user,
        "labels": dict(spec.labels), "groups": list(spec.groups), "description": spec.description,
        "enabled": spec.enabled, "connector": spec.connector,
    }


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _spec(row: Host, groups: Iterable[str]) -> HostSpec:
    return HostSpec(
        name=row.name, address=row.address, port=row.port, user=row.user,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()}, groups=tuple(sorted(groups)),
        description=row.description, enabled=row.enabled, connector=row.connector,
    )


def _values(spec: HostSpec) -> dict[str, Any]:
    return {
        "address": spec.address, "port": spec.port, "user": spec.user, "labels": dict(spec.labels),
        "description": spec.description, "enabled": spec.enabled, "connector": spec.connector,
    }


def validate(specs: Sequence[HostSpec]) -> None:
    """InputError for the first invalid host (field ``<index>.<field>``) or any repeated name."""
    for i, spec in enumerate(specs):
        for fld, message in spec_problems(spec):
            who = f"host {spec.name!r}" if isinstance(spec.name, str) and spec.name else f"host #{i + 1}"
            raise InputError(f"{who}: {message}", field=f"{i}.{fld}")
    seen: set[str] = set()
    repeated = sorted({s.name for s in specs if s.name in seen or seen.add(s.name)})  # type: ignore[func-returns-value]
    if repeated:
        raise InputError(f"host name(s) given more than once: {', '.join(repeated)}", field="name")


class InventoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- bulk writes -----------------------------------------------------------------------------

    async def upsert(
        self, specs: list[HostSpec], *, source: str, default_groups: Sequence[str] = (), dry_run: bool = False
    ) -> ImportReport:
        """Create or replace hosts by name, all or nothing; each host's groups become its listed ones
        plus ``default_groups`` (created as needed). ``dry_run`` reports without writing."""
        for g in default_groups:
            check_name(g, "group name")
        specs = [replace(s, groups=tuple(dict.fromkeys((*s.groups, *default_groups)))) for s in specs]
        validate(specs)
        if not specs:
            return ImportReport()
        try:
            async with self.db.session() as s, s.begin():
                report = await self._upsert(s, specs, source)
                if dry_run:
                    await s.rollback()
                return report
        except IntegrityError:
            raise Conflict("the inventory changed while this batch was written; nothing was saved, "
                           "send it again") from None

    async def _upsert(self, s: AsyncSession, specs: list[HostSpec], source: str) -> ImportReport:
        names = [spec.name for spec in specs]
        existing: dict[str, Host] = {}
        for chunk in _chunks(names):
            for row in await s.scalars(select(Host).where(Host.name.in_(chunk))):
                existing[row.name] = row
        current = await self._groups_of(s, [h.id for h in existing.values()])
        group_ids = await self._ensure_groups(s, {g for spec in specs for g in spec.groups})

        created, updated, unchanged = [], [], []
        changes: list[dict[str, Any]] = []
        new_rows: list[dict[str, Any]] = []
        for spec in specs:
            row = existing.get(spec.name)
            if row is None:
                created.append(spec.name)
                new_rows.append({"name": spec.name, "source": source, **_values(spec)})
            elif _spec(row, current.get(row.id, ())) == spec and _same(row, spec):
                unchanged.append(spec.name)
            else:
                updated.append(spec.name)
                if _values(spec) != _values(_spec(row, ())):
                    changes.append({"id": row.id, "updated_at": utcnow(), **_values(spec)})
        if changes:
            await s.execute(update(Host), changes)
        ids = {name: row.id for name, row in existing.items()}
        for chunk in _chunks(new_rows):
            result = await s.execute(insert(Host).returning(Host.id, Host.name), list(chunk))
            ids.update({name: hid for hid, name in result.all()})

        drop: list[tuple[int, int]] = []
        add: list[dict[str, int]] = []
        for spec in specs:
            hid = ids[spec.name]
            have = {group_ids[g] for g in current.get(hid, ()) if g in group_ids} | {
                gid for g, gid in (await self._ids_of_current(current.get(hid, ()), group_ids))
            }
            want = {group_ids[g] for g in spec.groups}
            add += [{"host_id": hid, "group_id": gid} for gid in want - have]
            drop += [(hid, gid) for gid in have - want]
        await self._drop_memberships(s, drop)
        for chunk in _chunks(add):
            await s.execute(insert(HostGroup), list(chunk))
        return ImportReport(sorted(created), sorted(updated), sorted(unchanged))

    async def _ids_of_current(self, names: Iterable[str], known: Mapping[str, int]) -> list[tuple[str, int]]:
        return []

    async def _groups_of(self, s: AsyncSession, host_ids: Sequence[int]) -> dict[int, list[str]]:
        """host id → names of its groups, read in chunks."""
        out: dict[int, list[str]] = {}
        for chunk in _chunks(list(host_ids)):
            rows = await s.execute(
                select(HostGroup.host_id, Group.name)
                .join(Group, Group.id == HostGroup.group_id)
                .where(HostGroup.host_id.in_(chunk))
            )
            for hid, name in rows.all():
                out.setdefault(hid, []).append(name)
        return out

    async def _ensure_groups(self, s: AsyncSession, names: set[str]) -> dict[str, int]:
        """name → id for these groups, creating the missing ones."""
        ids: dict[str, int] = {}
        ordered = sorted(names)
        for chunk in _chunks(ordered):
            rows = await s.execute(select(Group.name, Group.id).where(Group.name.in_(chunk)))
            ids.update({name: gid for name, gid in rows.all()})
        missing = [{"name": n, "description": ""} for n in ordered if n not in ids]
        for chunk in _chunks(missing):
            rows = await s.execute(insert(Group).returning(Group.name, Group.id), list(chunk))
            ids.update({name: gid for name, gid in rows.all()})
        return ids
