"""Hosts and groups kept in the database: bulk upsert, queries, selector resolution, group edits.

Every write is one transaction: a batch is stored whole or not at all. Bulk paths read and write in
chunks (one statement per chunk of names), never one query per host, so a 10,000-host import takes
a handful of round trips.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.errors import Conflict, InputError, NotFound
from smallyi.inventory import selectors
from smallyi.inventory.hosts import LOCAL_NAME, NO_OVERRIDES, HostSpec, SSHOverrides, check_name
from smallyi.inventory.importers.fields import check_group_name, parse_ssh, spec_problems
from smallyi.inventory.status import latest_status_is
from smallyi.storage.db import Database
from smallyi.storage.models import Group, Host, HostGroup, utcnow

#: names per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits
CHUNK = 500
LOCAL = HostSpec(
    name=LOCAL_NAME, address="127.0.0.1", groups=(LOCAL_NAME,), connector="local",
    description="the small-yi server itself",
)
#: fields ``update_host`` may change
EDITABLE = ("name", "address", "port", "user", "labels", "groups", "description", "enabled", "ssh")
_GROUP_HINT = "`small-yi hosts groups` or GET /api/v1/groups lists them"


def _not_from_git(name: str, source: str) -> None:
    """Hosts from the GitOps repository change only by commits (``source == "git"``)."""
    if source == "git":
        raise Conflict(f"host {name!r} comes from the GitOps repository (hosts/*.yaml): change it there "
                       "with a commit", field="name")


#: how a host came into the inventory, in words (``hosts.source``)
SOURCES = {"manual": "added by hand", "import": "imported from a file", "builtin": "the small-yi server itself",
           "git": "from the GitOps repository"}


def not_git_owned(name: str, source: str) -> str:
    """Why a GitOps repository may not replace host ``name`` (it manages only the hosts it created)."""
    return (f"host {name!r} is already in the inventory ({SOURCES.get(source, source)}): a GitOps repository "
            f"cannot take it over; give the repository's host another name, or remove that host from the "
            f"inventory first (`small-yi hosts remove {name}`)")


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an upsert did, by host name (each list sorted)."""

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
        "enabled": spec.enabled, "connector": spec.connector, "ssh": spec.ssh.to_dict(),
    }


def validate(specs: Sequence[HostSpec], *, indexed: bool = True) -> None:
    """InputError for the first invalid host (field ``<index>.<field>``), or naming repeated names."""
    for i, spec in enumerate(specs):
        for fld, message in spec_problems(spec):
            who = f"host {spec.name!r}" if isinstance(spec.name, str) and spec.name else f"host #{i + 1}"
            raise InputError(f"{who}: {message}", field=f"{i}.{fld}" if indexed else fld)
    repeated = sorted(name for name, n in Counter(s.name for s in specs).items() if n > 1)
    if repeated:
        raise InputError(f"host name(s) given more than once: {', '.join(repeated)}", field="name")


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _spec(row: Host, groups: Iterable[str]) -> HostSpec:
    return HostSpec(
        name=row.name, address=row.address, port=row.port, user=row.user,
        labels={str(k): str(v) for k, v in (row.labels or {}).items()}, groups=tuple(sorted(groups)),
        description=row.description, enabled=row.enabled, connector=row.connector,
        ssh=SSHOverrides(**row.ssh) if row.ssh else NO_OVERRIDES,
    )


def _values(spec: HostSpec) -> dict[str, Any]:
    """The columns of ``hosts`` a spec sets (all but name and groups)."""
    return {
        "address": spec.address, "port": spec.port, "user": spec.user, "labels": dict(spec.labels),
        "description": spec.description, "enabled": spec.enabled, "connector": spec.connector,
        "ssh": spec.ssh.to_dict(),
    }


class InventoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- bulk writes -----------------------------------------------------------------------------

    async def upsert(
        self, specs: list[HostSpec], *, source: str, default_groups: Sequence[str] = (), dry_run: bool = False
    ) -> ImportReport:
        """Create or replace hosts by name, all or nothing.

        Each host's groups become the ones it lists plus ``default_groups`` (created as needed);
        ``source`` is recorded on new hosts. ``dry_run`` reports what would change and writes nothing.
        """
        for g in default_groups:
            problem = check_group_name(g)
            if problem:
                raise InputError(problem, field="group")
        specs = [replace(s, groups=tuple(dict.fromkeys((*s.groups, *default_groups)))) for s in specs]
        validate(specs)
        if not specs:
            return ImportReport()
        try:
            async with self.db.session() as s:
                report = await self._upsert(s, specs, source)
                await (s.rollback() if dry_run else s.commit())
                return report
        except IntegrityError:
            raise Conflict(
                "the inventory changed while this batch was written; nothing was saved, send it again"
            ) from None

    async def _upsert(self, s: AsyncSession, specs: list[HostSpec], source: str) -> ImportReport:
        existing: dict[str, Host] = {}
        for chunk in _chunks([spec.name for spec in specs]):
            existing.update({row.name: row for row in await s.scalars(select(Host).where(Host.name.in_(chunk)))})
        if source == "git":  # the repository replaces its own hosts only, never the server's or a person's
            foreign = sorted((row.name, row.source) for row in existing.values() if row.source != "git")
            if foreign:
                raise Conflict("; ".join(not_git_owned(n, src) for n, src in foreign), field="name")
        current = await _memberships(s, [h.id for h in existing.values()])
        group_ids = await _ensure_groups(s, {g for spec in specs for g in spec.groups})

        created, updated, unchanged = [], [], []
        changes: list[dict[str, Any]] = []
        new_rows: list[dict[str, Any]] = []
        for spec in specs:
            row = existing.get(spec.name)
            if row is not None and source != "git":
                _not_from_git(row.name, row.source)
            if row is None:
                created.append(spec.name)
                new_rows.append({"name": spec.name, "source": source, **_values(spec)})
                continue
            same_values = _values(_spec(row, ())) == _values(spec)
            if same_values and set(current.get(row.id, {})) == set(spec.groups):
                unchanged.append(spec.name)
                continue
            updated.append(spec.name)
            if not same_values:
                changes.append({"id": row.id, "updated_at": utcnow(), **_values(spec)})
        if changes:
            await s.execute(update(Host), changes)
        ids = {name: row.id for name, row in existing.items()}
        for chunk in _chunks(new_rows):
            result = await s.execute(insert(Host).returning(Host.id, Host.name), list(chunk))
            ids.update({name: hid for hid, name in result.all()})
        await _reconcile(s, {ids[spec.name]: {group_ids[g] for g in spec.groups} for spec in specs}, current)
        return ImportReport(sorted(created), sorted(updated), sorted(unchanged))

    async def ensure_local_host(self) -> bool:
        """Register the server itself as host ``local`` (group ``local``) unless a ``local`` exists.

        Idempotent and safe when several replicas start at once; True if it was created now.
        """
        async with self.db.session() as s:
            if await s.scalar(select(Host.id).where(Host.name == LOCAL.name)) is not None:
                return False
        try:
            report = await self.upsert([LOCAL], source="builtin")
        except Conflict:  # another replica created it first
            return False
        return bool(report.created)

    # -- reading ---------------------------------------------------------------------------------

    async def list_hosts(
        self,
        *,
        group: str | None = None,
        labels: Mapping[str, str] | None = None,
        search: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[HostSpec], int]:
        """One page of hosts (by name) in ``group``, carrying every label, matching ``search``, whose
        latest finished result has ``status`` (``never``: none yet); and the total that match."""
        async with self.db.session() as s:
            q = select(Host)
            if group:
                await _group_id(s, group)
                q = q.where(Host.id.in_(_members_of(group)))
            for key, value in (labels or {}).items():
                q = q.where(Host.labels[key].as_string() == value)
            if search:
                q = q.where(or_(*(
                    col.icontains(search, autoescape=True) for col in (Host.name, Host.address, Host.description)
                )))
            if status:
                q = q.where(latest_status_is(status))
            total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
            q = q.order_by(Host.name).offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return await _load(s, q), total

    async def sources(self, names: Sequence[str]) -> dict[str, str]:
        """Where each of ``names`` that is in the inventory came from (``manual``, ``import``, ``git``, ``builtin``)."""
        out: dict[str, str] = {}
        async with self.db.session() as s:
            for chunk in _chunks(sorted(set(names))):
                out.update({n: src for n, src in (await s.execute(
                    select(Host.name, Host.source).where(Host.name.in_(chunk)))).all()})
        return out

    async def all_hosts(self) -> list[HostSpec]:
        """Every host, enabled or not, by name, with its groups."""
        async with self.db.session() as s:
            return await _load(s, select(Host).order_by(Host.name))

    async def get_host(self, name: str) -> HostSpec:
        async with self.db.session() as s:
            found = await _load(s, select(Host).where(Host.name == name))
        if not found:
            raise NotFound(f"host {name!r} is not in the inventory", field="name")
        return found[0]

    async def resolve(self, selector: selectors.Selector, *, allow_empty: bool = False) -> list[HostSpec]:
        """The enabled hosts ``selector`` picks, by name.

        NotFound if it names a group or hosts that do not exist (all of them are named); InputError
        if nothing enabled matches, unless ``allow_empty``.
        """
        async with self.db.session() as s:
            q = select(Host).order_by(Host.name)
            if selector.group:
                await _group_id(s, selector.group)
            if selector.hosts:
                candidates: list[HostSpec] = []
                for chunk in _chunks(sorted(set(selector.hosts))):
                    candidates += await _load(s, q.where(Host.name.in_(chunk)))
                candidates.sort(key=lambda h: h.name)
                missing = selectors.missing_names(selector, candidates)
                if missing:
                    raise NotFound(f"host(s) not in the inventory: {', '.join(missing)}", field="target.hosts")
            elif selector.group:
                candidates = await _load(s, q.where(Host.id.in_(_members_of(selector.group))))
            else:
                q = q.where(*(Host.labels[k].as_string() == v for k, v in selector.labels.items()))
                candidates = await _load(s, q)
        matched = selectors.select(selector, candidates)
        if not matched and not allow_empty:
            disabled = len(selectors.select(selector, [replace(h, enabled=True) for h in candidates]))
            note = f" ({disabled} matching host(s) are disabled)" if disabled else ""
            raise InputError(f"no enabled host matches {selector.describe()}{note}", field="target")
        return matched

    # -- single hosts ----------------------------------------------------------------------------

    async def update_host(self, name: str, /, **fields: Any) -> HostSpec:
        """Change some fields of one host (``groups`` replaces its groups); returns the new host."""
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise InputError(f"cannot change {', '.join(unknown)}; editable: {', '.join(EDITABLE)}",
                             field=unknown[0])
        for key, value in fields.items():
            if value is None:
                raise InputError(f"{key} cannot be null", field=key)
        if "labels" in fields:
            fields["labels"] = {str(k): v for k, v in dict(fields["labels"]).items()}
        if "groups" in fields:
            fields["groups"] = tuple(dict.fromkeys(fields["groups"]))
        if "ssh" in fields and not isinstance(fields["ssh"], SSHOverrides):
            fields["ssh"], problems = parse_ssh(fields["ssh"])
            if problems:
                raise InputError(problems[0], field="ssh")
        async with self.db.session() as s:
            row = await s.scalar(select(Host).where(Host.name == name))
            if row is None:
                raise NotFound(f"host {name!r} is not in the inventory", field="name")
            _not_from_git(name, row.source)
            current = await _memberships(s, [row.id])
            new = replace(_spec(row, current.get(row.id, {})), **fields)
            validate([new], indexed=False)
            if new.name != name and await s.scalar(select(Host.id).where(Host.name == new.name)) is not None:
                raise Conflict(f"host {new.name!r} already exists", field="name")
            values = {"name": new.name, **_values(new)}
            if any(getattr(row, k) != v for k, v in values.items()):
                await s.execute(update(Host).where(Host.id == row.id).values(**values, updated_at=utcnow()))
            group_ids = await _ensure_groups(s, set(new.groups))
            await _reconcile(s, {row.id: {group_ids[g] for g in new.groups}}, current)
            try:
                await s.commit()
            except IntegrityError:
                raise Conflict(f"host {new.name!r} already exists", field="name") from None
        return replace(new, groups=tuple(sorted(new.groups)))

    async def delete_host(self, name: str) -> None:
        async with self.db.session.begin() as s:
            found = (await s.execute(select(Host.id, Host.source).where(Host.name == name))).first()
            if found is None:
                raise NotFound(f"host {name!r} is not in the inventory", field="name")
            hid, source = found
            _not_from_git(name, source)
            await s.execute(delete(HostGroup).where(HostGroup.host_id == hid))
            await s.execute(delete(Host).where(Host.id == hid))

    # -- groups ----------------------------------------------------------------------------------

    async def list_groups(self) -> list[GroupInfo]:
        """Every group by name, with how many hosts it holds."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(Group.name, Group.description, func.count(HostGroup.host_id))
                .outerjoin(HostGroup, HostGroup.group_id == Group.id)
                .group_by(Group.id, Group.name, Group.description)
                .order_by(Group.name)
            )
            return [GroupInfo(name, description, count) for name, description, count in rows.all()]

    async def create_group(self, name: str, description: str = "") -> GroupInfo:
        check_name(name, "group name")
        async with self.db.session() as s:
            if await s.scalar(select(Group.id).where(Group.name == name)) is not None:
                raise Conflict(f"group {name!r} already exists", field="name")
            s.add(Group(name=name, description=description))
            try:
                await s.commit()
            except IntegrityError:
                raise Conflict(f"group {name!r} already exists", field="name") from None
        return GroupInfo(name, description, 0)

    async def update_group(
        self, name: str, *, new_name: str | None = None, description: str | None = None
    ) -> GroupInfo:
        """Rename a group and/or change its description; its hosts stay in it."""
        if new_name is not None:
            check_name(new_name, "group name")
        async with self.db.session() as s:
            gid = await _group_id(s, name)
            taken = select(Group.id).where(Group.name == new_name)
            if new_name and new_name != name and await s.scalar(taken) is not None:
                raise Conflict(f"group {new_name!r} already exists", field="name")
            values: dict[str, Any] = {}
            if new_name is not None:
                values["name"] = new_name
            if description is not None:
                values["description"] = description
            if values:
                await s.execute(update(Group).where(Group.id == gid).values(**values))
            try:
                await s.commit()
            except IntegrityError:
                raise Conflict(f"group {new_name!r} already exists", field="name") from None
        return next(g for g in await self.list_groups() if g.name == (new_name or name))

    async def rename_group(self, name: str, new_name: str) -> GroupInfo:
        return await self.update_group(name, new_name=new_name)

    async def delete_group(self, name: str) -> None:
        """Delete a group; its hosts stay in the inventory, just no longer in it."""
        async with self.db.session.begin() as s:
            gid = await _group_id(s, name)
            await s.execute(delete(HostGroup).where(HostGroup.group_id == gid))
            await s.execute(delete(Group).where(Group.id == gid))

    async def set_members(self, group: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> list[str]:
        """Add hosts to and remove hosts from a group, all or nothing; returns its members by name."""
        both = sorted(set(add) & set(remove))
        if both:
            raise InputError(f"host(s) both added and removed: {', '.join(both)}", field="add")
        async with self.db.session() as s:
            gid = await _group_id(s, group)
            wanted = sorted(set(add) | set(remove))
            ids: dict[str, int] = {}
            for chunk in _chunks(wanted):
                rows = await s.execute(select(Host.name, Host.id).where(Host.name.in_(chunk)))
                ids.update({n: i for n, i in rows.all()})
            missing = [n for n in wanted if n not in ids]
            if missing:
                raise NotFound(f"host(s) not in the inventory: {', '.join(missing)}", field="hosts")
            members = {hid for (hid,) in (await s.execute(
                select(HostGroup.host_id).where(HostGroup.group_id == gid))).all()}
            new = [{"host_id": ids[n], "group_id": gid} for n in sorted(set(add)) if ids[n] not in members]
            for chunk in _chunks(new):
                await s.execute(insert(HostGroup), list(chunk))
            gone = [ids[n] for n in remove]
            for chunk in _chunks(gone):
                await s.execute(delete(HostGroup).where(HostGroup.group_id == gid, HostGroup.host_id.in_(chunk)))
            names = list(await s.scalars(select(Host.name).where(Host.id.in_(_members_of(group))).order_by(Host.name)))
            try:
                await s.commit()
            except IntegrityError:
                raise Conflict("the group changed while this was written; nothing was saved, try again") from None
        return names


# -- queries shared by the methods ---------------------------------------------------------------


def _members_of(group: str) -> Select[int]:
    return select(HostGroup.host_id).join(Group, Group.id == HostGroup.group_id).where(Group.name == group)


async def _group_id(s: AsyncSession, name: str) -> int:
    gid = await s.scalar(select(Group.id).where(Group.name == name))
    if gid is None:
        raise NotFound(f"group {name!r} does not exist; {_GROUP_HINT}", field="group")
    return gid


async def _load(s: AsyncSession, q: Select[Host]) -> list[HostSpec]:
    rows = list(await s.scalars(q))
    groups = await _memberships(s, [r.id for r in rows])
    return [_spec(r, groups.get(r.id, {})) for r in rows]


async def _memberships(s: AsyncSession, host_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """host id → {group name: group id}, read in chunks."""
    out: dict[int, dict[str, int]] = {}
    for chunk in _chunks(list(host_ids)):
        rows = await s.execute(
            select(HostGroup.host_id, Group.name, Group.id)
            .join(Group, Group.id == HostGroup.group_id)
            .where(HostGroup.host_id.in_(chunk))
        )
        for hid, name, gid in rows.all():
            out.setdefault(hid, {})[name] = gid
    return out


async def _ensure_groups(s: AsyncSession, names: set[str]) -> dict[str, int]:
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


async def _reconcile(
    s: AsyncSession, want: Mapping[int, set[int]], current: Mapping[int, Mapping[str, int]]
) -> None:
    """Make each host's group ids exactly ``want[host]``, touching only the memberships that change."""
    add: list[dict[str, int]] = []
    drop: list[tuple[int, int]] = []
    for hid, gids in want.items():
        have = set(current.get(hid, {}).values())
        add += [{"host_id": hid, "group_id": gid} for gid in sorted(gids - have)]
        drop += [(hid, gid) for gid in sorted(have - gids)]
    for chunk in _chunks(drop):
        await s.execute(delete(HostGroup).where(tuple_(HostGroup.host_id, HostGroup.group_id).in_(chunk)))
    for chunk in _chunks(add):
        await s.execute(insert(HostGroup), list(chunk))
