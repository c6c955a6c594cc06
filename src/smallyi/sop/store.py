"""SOPs stored in the platform: the YAML as written, validated before it is kept, versioned.

A SOP's ``origin`` is ``platform`` (saved through the API or the CLI) or ``git`` (the GitOps
repository's ``sops/``, stored by a sync through :meth:`SopStore.sync_git`, bound to the commit, and
read-only everywhere else: change it with a commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from sqlalchemy import delete, select

from smallyi.errors import Conflict, InputError, NotFound
from smallyi.sop.checks import NAME_RE
from smallyi.sop.problems import Problem
from smallyi.sop.validate import Knowns, load_sop
from smallyi.storage.db import Database
from smallyi.storage.models import SopDefinition, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso


class GitOrigin(TypedDict):
    """Where a git SOP comes from: the repository (credentials redacted), the file, the commit."""

    repo: str
    path: str
    commit: str


class SopDict(TypedDict):
    """A stored SOP as the API answers it (``SopOut``; without ``source`` in lists)."""

    id: int
    name: str
    description: str
    version: int
    created_by: str
    updated_by: str
    created_at: str
    updated_at: str
    #: ``platform`` or ``git``
    origin: str
    git: GitOrigin | None
    source: NotRequired[str]


def sop_dict(d: SopDefinition, *, source: bool = True) -> SopDict:
    out: SopDict = {"id": d.id, "name": d.name, "description": d.description, "version": d.version,
                           "created_by": d.created_by, "updated_by": d.updated_by, "created_at": iso(d.created_at),
                           "updated_at": iso(d.updated_at), "origin": d.origin,
                           "git": {"repo": d.origin_repo, "path": d.origin_path, "commit": d.origin_commit}
                           if d.origin == "git" else None}
    if source:
        out["source"] = d.source
    return out


def read_only(row: SopDefinition) -> Conflict:
    """The error for a change to a SOP that comes from the GitOps repository."""
    return Conflict(f"SOP {row.name!r} comes from the GitOps repository {row.origin_repo} ({row.origin_path} at "
                    f"commit {row.origin_commit[:10]}): change it there with a commit; the next sync stores it",
                    field="name")


@dataclass(frozen=True, slots=True)
class GitSop:
    """A valid SOP file of the repository, to store under ``name``."""

    name: str
    path: str
    source: str
    description: str


@dataclass
class GitSopReport:
    """What a sync did to the stored SOPs (names), and the files it could not take (``path`` → why)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


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
            if row is not None and row.origin == "git":
                raise read_only(row)
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
            row = await s.scalar(select(SopDefinition).where(SopDefinition.name == name))
            if row is not None and row.origin == "git":
                raise read_only(row)
            res = await s.execute(delete(SopDefinition).where(SopDefinition.name == name))
        if not affected(res):
            raise NotFound(f"no stored SOP named {name!r}", field="sop")

    async def sync_git(self, sops: list[GitSop], *, repo: str, commit: str, by: str, keep: frozenset[str] = frozenset(),
                       dry_run: bool = False) -> GitSopReport:
        """Make the git SOPs those of ``sops`` (from ``commit``), in one transaction.

        New names are created, changed ones get a new version, unchanged ones are re-bound to the commit;
        git SOPs neither in ``sops`` nor in ``keep`` (files of the commit that did not validate: their last
        good version stays) are removed. A name taken by a platform SOP is refused, not overwritten.
        """
        report = GitSopReport()
        now = utcnow()
        async with self.db.session() as s:
            rows = {r.name: r for r in (await s.scalars(select(SopDefinition))).all()}
            for g in sops:
                row = rows.get(g.name)
                if row is not None and row.origin != "git":
                    report.refused[g.path] = (f"a SOP named {g.name!r} is already stored in the platform; delete it "
                                              f"there (DELETE /api/v1/sops/{g.name}) or rename the file")
                    continue
                if row is None:
                    s.add(SopDefinition(name=g.name, source=g.source, description=g.description, version=1,
                                        created_by=by, updated_by=by, created_at=now, updated_at=now, origin="git",
                                        origin_repo=repo, origin_path=g.path, origin_commit=commit))
                    report.created.append(g.name)
                    continue
                if row.source != g.source:
                    row.source, row.description, row.version = g.source, g.description, row.version + 1
                    row.updated_by, row.updated_at = by, now
                    report.updated.append(g.name)
                else:
                    report.unchanged.append(g.name)
                row.origin_repo, row.origin_path, row.origin_commit = repo, g.path, commit
            wanted = {g.name for g in sops} | keep
            for name, row in sorted(rows.items()):
                if row.origin == "git" and name not in wanted:
                    await s.delete(row)
                    report.removed.append(name)
            await (s.rollback() if dry_run else s.commit())
        return report
