"""SOPs stored in the platform: the YAML as written, validated before it is kept, versioned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from smallyi.errors import Conflict, InputError, NotFound
from smallyi.sop.checks import NAME_RE
from smallyi.sop.problems import Problem
from smallyi.sop.validate import Knowns, load_sop
from smallyi.storage.db import Database
from smallyi.storage.models import SopDefinition, utcnow


def sop_dict(d: SopDefinition, *, source: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "name": d.name, "description": d.description, "version": d.version,
                           "created_by": d.created_by, "updated_by": d.updated_by, "created_at": d.created_at,
                           "updated_at": d.updated_at}
    if source:
        out["source"] = d.source
    return out


class SopStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, name: str, source: str, *, by: str, knowns: Knowns | None = None, create: bool = False,
                   strict: bool = False) -> tuple[SopDefinition, list[Problem]]:
        """Validate and store (a new version when it exists); SopInvalid lists every problem, storing nothing."""
        if not NAME_RE.match(name or ""):
            raise InputError(f"name: {name!r}: use letters, digits, '.', '_' and '-'", field="name")
        sop, warnings = load_sop(source, source=name, strict=strict, knowns=knowns)
        if sop.name and sop.name != name:
            raise InputError(f"name: the YAML says name: {sop.name!r} but it is being saved as {name!r}",
                             field="name")
        now = utcnow()
        async with self.db.session.begin() as s:
            row = await s.scalar(select(SopDefinition).where(SopDefinition.name == name))
            if row is not None and create:
                raise Conflict(f"SOP {name!r} already exists; PUT /api/v1/sops/{name} replaces it", field="name")
            if row is None:
                row = SopDefinition(name=name, source=source, description=sop.description, version=1,
                                    created_by=by, updated_by=by, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.source, row.description, row.version = source, sop.description, row.version + 1
                row.updated_by, row.updated_at = by, now
        return row, warnings

    async def get(self, name: str) -> SopDefinition:
        async with self.db.session() as s:
            row = await s.scalar(select(SopDefinition).where(SopDefinition.name == name))
        if row is None:
            raise NotFound(f"no stored SOP named {name!r}", field="sop")
        return row

    async def names(self) -> frozenset[str]:
        async with self.db.session() as s:
            return frozenset((await s.scalars(select(SopDefinition.name))).all())

    async def all(self) -> list[SopDefinition]:
        async with self.db.session() as s:
            return list((await s.scalars(select(SopDefinition).order_by(SopDefinition.name))).all())

    async def delete(self, name: str) -> None:
        async with self.db.session.begin() as s:
            res = await s.execute(delete(SopDefinition).where(SopDefinition.name == name))
        if not res.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"no stored SOP named {name!r}", field="sop")
