"""Push a rendered commit to its hosts: fetch, compare, write what changed, check, restore, reload.

Phases, each one fan-out through the engine (same limits, pool and host keys as tasks):

1. fetch every target file from every host (``engine.get_files``);
2. compare: unchanged files are left alone; a plan stops here;
3. write the changed files, each atomically, with owner and mode (``engine.put_files``);
4. run each written file's ``check`` with ``SMALLYI_PATH`` set to its path (shell-quoted); where it
   fails, put the previous file back (or remove the new one) and mark the file ``restored``;
5. run ``reload`` where the file changed and its check passed.

Progress goes to ``on_event`` (wire dicts: ``phase`` and ``file`` events) as it happens.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from smallyi.execution.engine import Engine, Job
from smallyi.execution.events import Event, HostDone, HostOutput
from smallyi.execution.files import FilePut, HostFiles
from smallyi.execution.transfer import TransferOptions
from smallyi.gitops.changes import Change
from smallyi.gitops.render import Desired, Rendered, digest
from smallyi.gitops.reports import FileStatus, SyncCounts
from smallyi.gitops.store import FileRecord, host_status
from smallyi.inventory.hosts import HostSpec
from smallyi.types import HostStatus

#: progress events (``phase``, ``file``): small JSON-ready dicts, one shape per ``type``
OnEvent = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Limits:
    """Per-host time limit (transfers and commands), hosts at once, new connections per second."""

    timeout: float = 60.0
    concurrency: int = 0
    rate: float = 0.0


def command_for(path: str, command: str) -> str:
    """``command`` with ``SMALLYI_PATH`` set to ``path``, quoted: the path can never become shell syntax."""
    return f"SMALLYI_PATH={shlex.quote(path)}; export SMALLYI_PATH; {command}"


class Distributor:
    def __init__(self, engine: Engine, limits: Limits, on_event: OnEvent | None = None) -> None:
        self.engine = engine
        self.limits = limits
        self.on_event = on_event

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _opts(self) -> TransferOptions:
        return TransferOptions(concurrency=self.limits.concurrency, rate=self.limits.rate, timeout=self.limits.timeout)

    def _record(self, out: list[FileRecord], rec: FileRecord) -> None:
        out.append(rec)
        self._emit({"type": "file", "host": rec.host, "path": rec.path, "status": rec.status, "reason": rec.reason})

    async def compare(self, desired: Desired) -> tuple[list[Change], list[FileRecord]]:
        """Phase 1-2: the changes to make, and the files already settled (unchanged, or unreadable)."""
        by_host = desired.by_host()
        self._emit({"type": "phase", "phase": "fetch", "hosts": len(by_host), "files": len(desired.files)})
        got = await self.engine.get_files({h: [r.path for r in rs] for h, rs in by_host.items()}, self._opts())
        changes: list[Change] = []
        settled: list[FileRecord] = []
        for host, rendered in by_host.items():
            hf = got[host.name]
            for r in rendered:
                fr = hf.file(r.path)
                if fr is None or not fr.ok:
                    reason = fr.error if fr is not None and fr.error else hf.reason or "not read"
                    self._record(settled, _rec(r, FileStatus.FAILED, f"cannot read the current file: {reason}"))
                    continue
                change = Change(r, None if fr.missing else fr.content, fr.mode, fr.owner)
                if change.changed:
                    changes.append(change)
                else:
                    self._record(settled, _rec(r, FileStatus.UNCHANGED, left=r.digest))
        return changes, settled

    async def apply(self, changes: Sequence[Change]) -> list[FileRecord]:
        """Phases 3-5 for the changed files; one record per file."""
        out: list[FileRecord] = []
        if not changes:
            return out
        self._emit({"type": "phase", "phase": "write", "files": len(changes)})
        puts: dict[HostSpec, list[FilePut]] = {}
        for c in changes:
            e = c.rendered.entry
            puts.setdefault(c.rendered.host, []).append(
                FilePut(c.rendered.path, c.rendered.content, e.owner, e.mode, mkdir=e.mkdir))
        written_hosts = await self.engine.put_files(puts, self._opts())
        written: list[Change] = []
        for c in changes:
            hf = written_hosts[c.rendered.host.name]
            fr = hf.file(c.rendered.path)
            if fr is not None and fr.ok:
                written.append(c)
            else:
                why = fr.error if fr is not None and fr.error else hf.reason or "not written"
                self._record(out, _rec(c.rendered, FileStatus.FAILED, f"write failed: {why}", c.diff))
        checked = await self._commands("check", written)
        passed: list[Change] = []
        restore: list[tuple[Change, str]] = []
        for c in written:
            failure = checked.get(_key(c))
            if failure is None:
                passed.append(c)
            else:
                restore.append((c, failure))
        await self._restore(restore, out)
        reloaded = await self._commands("reload", passed)
        for c in passed:
            failure = reloaded.get(_key(c))
            status = FileStatus.FAILED if failure else FileStatus.CHANGED
            reason = f"written, but reload failed: {failure}" if failure else ""
            self._record(out, _rec(c.rendered, status, reason, c.diff, left=c.rendered.digest))
        return out

    async def _restore(self, restore: Sequence[tuple[Change, str]], out: list[FileRecord]) -> None:
        if not restore:
            return
        self._emit({"type": "phase", "phase": "restore", "files": len(restore)})
        puts: dict[HostSpec, list[FilePut]] = {}
        for c, _ in restore:
            puts.setdefault(c.rendered.host, []).append(FilePut(c.rendered.path, c.old, c.old_owner, c.old_mode))
        done = await self.engine.put_files(puts, self._opts())
        for c, failure in restore:
            hf: HostFiles = done[c.rendered.host.name]
            fr = hf.file(c.rendered.path)
            if fr is not None and fr.ok:
                left = "" if c.old is None else digest(c.old)
                self._record(out, _rec(c.rendered, FileStatus.RESTORED,
                                       f"check failed ({failure}); the previous file was put back", c.diff, left=left))
            else:
                why = fr.error if fr is not None and fr.error else hf.reason
                self._record(out, _rec(c.rendered, FileStatus.FAILED,
                                       f"check failed ({failure}) and putting the previous file back failed: {why}",
                                       c.diff, left=c.rendered.digest))

    async def _commands(self, which: str, changes: Sequence[Change]) -> dict[tuple[str, str], str]:
        """Run each change's ``check`` or ``reload``; (host, path) → why it failed, for the failures."""
        jobs: dict[str, list[Change]] = {}
        for c in changes:
            command = getattr(c.rendered.entry, which)
            if command:
                jobs.setdefault(command_for(c.rendered.path, command), []).append(c)
        if not jobs:
            return {}
        self._emit({"type": "phase", "phase": which, "files": sum(len(v) for v in jobs.values())})
        failures: dict[tuple[str, str], str] = {}
        for command, group in jobs.items():
            hosts = list(dict.fromkeys(c.rendered.host for c in group))
            tail = _Tail()
            job = Job(hosts=hosts, command=command, timeout=self.limits.timeout,
                      concurrency=self.limits.concurrency or len(hosts), rate=self.limits.rate)
            await self.engine.run(job, tail)
            for c in group:
                why = tail.failure(c.rendered.host.name)
                if why is not None:
                    failures[_key(c)] = why
        return failures


class _Tail:
    """An engine ``emit`` that keeps each host's outcome and last output line (for the reason)."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}
        self.done: dict[str, HostDone] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, HostOutput) and event.text.strip():
            self.last[event.host] = event.text.strip()[:300]
        elif isinstance(event, HostDone):
            self.done[event.host] = event

    def failure(self, host: str) -> str | None:
        done = self.done.get(host)
        if done is not None and done.status == HostStatus.SUCCESS:
            return None
        reason = done.reason if done is not None else "did not run"
        last = self.last.get(host)
        return f"{reason}: {last}" if last else reason


def _key(c: Change) -> tuple[str, str]:
    return c.rendered.host.name, c.rendered.path


def _rec(r: Rendered, status: FileStatus, reason: str = "", diff: str = "", left: str | None = None) -> FileRecord:
    return FileRecord(r.host.name, r.path, r.entry.template, status, reason, diff, r.digest, left)


def counts(records: Iterable[FileRecord]) -> SyncCounts:
    """Files by status, and hosts by their result."""
    out: dict[str, int] = {}
    per_host: dict[str, list[FileStatus]] = {}
    for r in records:
        out[r.status] = out.get(r.status, 0) + 1
        per_host.setdefault(r.host, []).append(r.status)
    hosts: dict[str, int] = {}
    for statuses in per_host.values():
        s = host_status(statuses)
        hosts[s] = hosts.get(s, 0) + 1
    return {"files": out, "hosts": hosts, "host_count": len(per_host)}


def planned(changes: Sequence[Change], settled: Sequence[FileRecord]) -> list[FileRecord]:
    """A plan's records: what would change (with diffs) and what is already in place."""
    return [*settled, *(_rec(c.rendered, FileStatus.CHANGED, "would be written", c.diff) for c in changes)]
