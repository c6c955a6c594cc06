"""GitOps in the database: sync records with their files, the synced state, and git-sourced hosts.

Bulk writes go in chunks (one statement per chunk), as the inventory's do: a sync of 500 hosts is a
handful of round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import delete, func, insert, select, tuple_, update

from smallyi.errors import NotFound
from smallyi.gitops.reports import (
    FileResult,
    FileStatus,
    HostResult,
    SopsReport,
    SyncCounts,
    SyncKind,
    SyncRecord,
    SyncStatus,
    SyncSummary,
)
from smallyi.gitops.snapshot import Commit
from smallyi.runners import ProcessState, process_state
from smallyi.storage.db import Database
from smallyi.storage.models import GitFileState, GitSync, GitSyncFile, Host, HostGroup, utcnow
from smallyi.timestamps import iso

CHUNK = 500
#: sync statuses that mean the commit went (or is going) out: the same commit is not synced again
TAKEN = (SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.SUCCESS, SyncStatus.FAILED)
#: how a host's files add up to the host's result, most telling first
HOST_ORDER = (FileStatus.FAILED, FileStatus.RESTORED, FileStatus.MISSING, FileStatus.DRIFTED, FileStatus.CHANGED,
              FileStatus.UNCHANGED)


@dataclass(frozen=True, slots=True)
class FileRecord:
    host: str
    path: str
    template: str
    status: FileStatus
    reason: str = ""
    diff: str = ""
    digest: str = ""
    #: sha256 the file holds after the sync ("" absent); None: unknown, the synced state is left as it was
    left: str | None = None


@dataclass(frozen=True, slots=True)
class StateRow:
    host: str
    path: str
    digest: str
    commit: str
    sync_id: int
    template: str


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i: i + CHUNK]


def host_status(statuses: Iterable[str]) -> FileStatus:
    """A host's result from its files' outcomes: the most telling one (unchanged when it has none)."""
    seen = set(statuses)
    return next((s for s in HOST_ORDER if s in seen), FileStatus.UNCHANGED)


def sync_dict(row: GitSync) -> SyncSummary:
    # counts is a JSON column: what ``distribute.counts`` (and the SOPs' report) wrote, or {} until the end
    counts = cast(SyncCounts, dict(row.counts or {}))
    return {
        "id": row.id, "kind": SyncKind(row.kind), "trigger": row.trigger, "status": SyncStatus(row.status),
        "reason": row.reason, "commit": row.commit, "short": row.commit[:10], "branch": row.branch,
        "author": row.author, "message": row.message, "requested_by": row.requested_by, "counts": counts,
        "sops": cast(SopsReport | None, (row.counts or {}).get("sops")),
        "started_at": iso(row.started_at), "finished_at": iso(row.finished_at),
    }


def file_result(f: FileRecord) -> FileResult:
    return {"host": f.host, "path": f.path, "template": f.template, "status": f.status, "reason": f.reason,
            "diff": f.diff, "digest": f.digest}


def hosts_of(files: Sequence[FileResult]) -> list[HostResult]:
    """Files grouped per host, with the host's result (failed > restored > changed > unchanged)."""
    by_host: dict[str, list[FileResult]] = {}
    for f in files:
        by_host.setdefault(f["host"], []).append(f)
    return [{"host": h, "status": host_status(f["status"] for f in fs), "files": fs} for h, fs in sorted(by_host.items())]


class SyncStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- sync records ----------------------------------------------------------------------------

    async def create(self, *, kind: SyncKind, trigger: str, commit: Commit, requested_by: str, runner: str,
                     status: SyncStatus = SyncStatus.RUNNING) -> int:
        async with self.db.session.begin() as s:
            row = GitSync(kind=kind, trigger=trigger, commit=commit.sha, branch=commit.branch, author=commit.author,
                          message=commit.message, requested_by=requested_by, status=status, runner=runner,
                          counts={}, reason="")
            s.add(row)
            await s.flush()
            return row.id

    async def describe(self, sync_id: int, commit: Commit) -> None:
        """Fill in the commit's details once they are known (a webhook knows only the id at first)."""
        async with self.db.session.begin() as s:
            await s.execute(update(GitSync).where(GitSync.id == sync_id).values(
                commit=commit.sha, branch=commit.branch, author=commit.author, message=commit.message,
                status=SyncStatus.RUNNING))

    async def finish(self, sync_id: int, *, status: SyncStatus, reason: str = "", counts: SyncCounts | None = None,
                     files: Sequence[FileRecord] = (), state_commit: str = "",
                     keep: set[tuple[str, str]] | None = None) -> None:
        """Write the files, the synced state they leave, and the record's end, in one transaction.

        ``keep``: the (host, path) pairs the synced commit manages; state of any other file is dropped
        (a host or an entry left the repository: its file is no longer watched for drift).
        """
        async with self.db.session.begin() as s:
            if keep is not None:
                known = (await s.execute(select(GitFileState.host_name, GitFileState.path))).all()
                stale = [(h, p) for h, p in known if (h, p) not in keep]
                for chunk in _chunks(stale):
                    await s.execute(delete(GitFileState).where(
                        tuple_(GitFileState.host_name, GitFileState.path).in_(chunk)))
            rows = [{"sync_id": sync_id, "host_name": f.host, "path": f.path, "template": f.template,
                     "status": f.status, "reason": f.reason, "diff": f.diff, "digest": f.digest} for f in files]
            for chunk in _chunks(rows):
                await s.execute(insert(GitSyncFile), list(chunk))
            state = [f for f in files if f.left is not None]
            keys = [(f.host, f.path) for f in state]
            for chunk in _chunks(keys):
                await s.execute(delete(GitFileState).where(tuple_(GitFileState.host_name, GitFileState.path).in_(chunk)))
            now = utcnow()
            new = [{"host_name": f.host, "path": f.path, "digest": f.left, "commit": state_commit, "sync_id": sync_id,
                    "template": f.template, "updated_at": now} for f in state]
            for chunk in _chunks(new):
                await s.execute(insert(GitFileState), list(chunk))
            await s.execute(update(GitSync).where(GitSync.id == sync_id).values(
                status=status, reason=reason, counts=counts or {}, finished_at=now))

    async def get(self, sync_id: int) -> SyncRecord:
        """A sync record with its files, grouped per host."""
        async with self.db.session() as s:
            row = await s.get(GitSync, sync_id)
            if row is None:
                raise NotFound(f"sync {sync_id} does not exist", field="id")
            files = list(await s.scalars(select(GitSyncFile).where(GitSyncFile.sync_id == sync_id)
                                         .order_by(GitSyncFile.host_name, GitSyncFile.id)))
        return {**sync_dict(row), "hosts": hosts_of([
            {"host": f.host_name, "path": f.path, "template": f.template, "status": FileStatus(f.status),
             "reason": f.reason, "diff": f.diff, "digest": f.digest} for f in files])}

    async def history(self, *, kind: str | None = None, limit: int = 50, offset: int = 0,
                      ) -> tuple[list[SyncSummary], int]:
        async with self.db.session() as s:
            q = select(GitSync)
            if kind:
                q = q.where(GitSync.kind == kind)
            total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = await s.scalars(q.order_by(GitSync.id.desc()).offset(offset).limit(limit))
            return [sync_dict(r) for r in rows], total

    async def taken(self, sha: str) -> int | None:
        """The id of a sync (not a drift check) that took or is taking commit ``sha``, if any."""
        async with self.db.session() as s:
            return await s.scalar(select(GitSync.id).where(
                GitSync.commit == sha, GitSync.kind.in_((SyncKind.SYNC, SyncKind.ROLLBACK)),
                GitSync.status.in_(TAKEN),
            ).order_by(GitSync.id.desc()).limit(1))

    async def last(self, *, kinds: Sequence[SyncKind] = (SyncKind.SYNC, SyncKind.ROLLBACK),
                   statuses: Sequence[SyncStatus] = (SyncStatus.SUCCESS, SyncStatus.FAILED)) -> SyncSummary | None:
        async with self.db.session() as s:
            row = await s.scalar(select(GitSync).where(GitSync.kind.in_(kinds), GitSync.status.in_(statuses))
                                 .order_by(GitSync.id.desc()).limit(1))
            return sync_dict(row) if row is not None else None

    async def interrupt_dead(self, runner_prefix: str, alive: str) -> int:
        """Mark syncs left queued/running by a dead process of this machine ``interrupted``."""
        async with self.db.session.begin() as s:
            rows = (await s.execute(select(GitSync.id, GitSync.runner).where(
                GitSync.status.in_((SyncStatus.QUEUED, SyncStatus.RUNNING)),
                GitSync.runner.startswith(runner_prefix)))).all()
            dead = [sid for sid, runner in rows if runner != alive and not _alive(runner)]
            for chunk in _chunks(dead):
                await s.execute(update(GitSync).where(GitSync.id.in_(chunk)).values(
                    status=SyncStatus.INTERRUPTED, reason="small-yi stopped before the sync finished",
                    finished_at=utcnow()))
            return len(dead)

    # -- synced state ----------------------------------------------------------------------------

    async def state(self) -> list[StateRow]:
        async with self.db.session() as s:
            rows = await s.scalars(select(GitFileState).order_by(GitFileState.host_name, GitFileState.path))
            return [StateRow(r.host_name, r.path, r.digest, r.commit, r.sync_id, r.template) for r in rows]

    # -- git-sourced hosts -----------------------------------------------------------------------

    async def remove_gone_hosts(self, names: Sequence[str]) -> list[str]:
        """Remove the git hosts no longer in the repository (``names``: the hosts it has now).

        The repository's hosts are created with source ``git`` by the inventory; a host of another
        source is never taken over (the inventory refuses it), so nothing here changes a source.
        """
        async with self.db.session.begin() as s:
            keep = set(names)
            gone = [(hid, name) for hid, name in (await s.execute(
                select(Host.id, Host.name).where(Host.source == "git"))).all() if name not in keep]
            for chunk in _chunks([hid for hid, _ in gone]):
                await s.execute(delete(HostGroup).where(HostGroup.host_id.in_(chunk)))
                await s.execute(delete(Host).where(Host.id.in_(chunk)))
            return sorted(name for _, name in gone)


def _alive(runner: str) -> bool:
    """Only a process alive on this machine keeps its sync (syncs are serialised per process)."""
    return process_state(runner) is ProcessState.ALIVE
