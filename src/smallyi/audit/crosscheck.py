"""Tasks and terminal sessions held against their audit records, pure.

The chain proves its records were not changed; it says nothing about the rows beside it. Someone who can
write the database can insert a task or a terminal session with no record, change a task's command after the
fact, or delete a task to hide a run, and the chain still verifies. ``Ledger`` remembers, while verification
streams the trail, which task and session each record names and a digest of who and what; the rows are then
held against it, both ways.

Memory: four bytes per task or session id (ids are dense), and one record or row at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from smallyi.audit.chain import Entry, Finding

#: findings of one kind listed before the rest are only counted
MAX_LISTED = 200


def _digest(*parts: str) -> bytes:
    d = hashlib.blake2b("\0".join(parts).encode(), digest_size=4).digest()
    return d if d != b"\0\0\0\0" else b"\0\0\0\1"


class _Digests:
    """A digest per id in ``1..top``, four bytes each; all zeros means none."""

    def __init__(self, top: int) -> None:
        self.top = top
        self._data = bytearray(4 * (top + 1))

    def put(self, key: int, digest: bytes) -> None:
        if 0 < key <= self.top:
            self._data[4 * key:4 * key + 4] = digest

    def get(self, key: int) -> bytes | None:
        if not 0 < key <= self.top:
            return None
        d = bytes(self._data[4 * key:4 * key + 4])
        return None if d == b"\0\0\0\0" else d

    def clear(self, key: int) -> None:
        self.put(key, b"\0\0\0\0")

    def remaining(self) -> list[int]:
        """The ids still holding a digest (those no row claimed)."""
        view = memoryview(self._data).cast("I")
        return [i for i in range(1, self.top + 1) if view[i]]


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    created_by: str
    command: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    username: str
    host_name: str
    started_at: datetime


class Ledger:
    """Feed every record (``feed``), then every task and session row; ``findings`` lists what does not match.

    ``top_task`` / ``top_session``: the highest ids in the tables when the check began (rows added since are
    not checked). Rows older than the trail's first record (``start``: from before the audit trail existed,
    or whose records the retention purged) are not checked either. Records keep whole seconds (a row is
    written just before its record, so it is never older than the record's second), but a purge may have
    deleted the record of a row from the same second as the first record it kept: ``purged`` says one has
    run, and rows of that second count as older.
    """

    def __init__(self, *, top_task: int, top_session: int, purged: bool = False) -> None:
        self._tasks = _Digests(top_task)
        self._sessions = _Digests(top_session)
        self._slack = timedelta(seconds=1 if purged else 0)
        self.start: datetime | None = None
        self.tasks_checked = 0
        self.sessions_checked = 0
        self.before_trail = 0
        self._found: dict[str, list[Finding]] = {}
        self._counts: dict[str, int] = {}

    def feed(self, e: Entry) -> None:
        if self.start is None:
            self.start = e.at
        if e.action == "task.create":
            tid = e.detail.get("task")
            if isinstance(tid, int):
                self._tasks.put(tid, _digest(e.actor, str(e.detail.get("command", ""))))
        elif e.action == "terminal.open":
            sid = e.detail.get("session")
            if isinstance(sid, int):
                self._sessions.put(sid, _digest(e.actor, e.target))

    def _before_trail(self, when: datetime) -> bool:
        if self.start is None or when < self.start + self._slack:
            self.before_trail += 1
            return True
        return False

    def task(self, row: TaskRow) -> None:
        what = f"task {row.id} ({row.command[:60]!r} by {row.created_by or '-'} at {_when(row.created_at)})"
        if self._compare(self._tasks, row.id, row.created_at, (row.created_by, row.command),
                         subject=f"task {row.id}", what=what, action="task.create", changed="its command or creator"):
            self.tasks_checked += 1

    def session(self, row: SessionRow) -> None:
        what = f"terminal session {row.id} ({row.username or '-'} on {row.host_name} at {_when(row.started_at)})"
        if self._compare(self._sessions, row.id, row.started_at, (row.username, row.host_name),
                         subject=f"session {row.id}", what=what, action="terminal.open", changed="its user or host"):
            self.sessions_checked += 1

    def _compare(self, digests: _Digests, row_id: int, at: datetime, parts: tuple[str, ...], *, subject: str,
                 what: str, action: str, changed: str) -> bool:
        """Hold one row (``parts``: what its ``action`` record's digest was made of) against its record and
        claim the record; False when the row is older than the trail and so was not checked."""
        want = digests.get(row_id)
        digests.clear(row_id)
        if self._before_trail(at):
            return False
        if want is None:
            self._add("unrecorded", subject, (
                f"{what} has no {action} audit record: it was written into the database by someone other than "
                "small-yi, or its record was removed"))
        elif want != _digest(*parts):
            self._add("mismatch", subject, (
                f"{what} does not match its {action} audit record: {changed} was changed in the database since"))
        return True

    def finish(self) -> list[Finding]:
        """The findings, with the records whose task or session row is gone."""
        for tid in self._tasks.remaining():
            self._add("vanished", f"task {tid}", (
                f"task {tid} has a task.create audit record but is not in the tasks table: it was deleted, with "
                "its results and output"))
        for sid in self._sessions.remaining():
            self._add("vanished", f"session {sid}", (
                f"terminal session {sid} has a terminal.open audit record but is not in the terminal_sessions "
                "table: it was deleted, with its recording"))
        out: list[Finding] = []
        for kind, found in self._found.items():
            out += found
            more = self._counts[kind] - len(found)
            if more > 0:
                out.append(Finding(0, 0, kind, f"... and {more} more {kind} task(s) or session(s)", subject=""))
        return out

    def _add(self, kind: str, subject: str, message: str) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        found = self._found.setdefault(kind, [])
        if len(found) < MAX_LISTED:
            found.append(Finding(0, 0, kind, message, subject=subject))


def _when(t: datetime) -> str:
    return t.isoformat(timespec="seconds")
