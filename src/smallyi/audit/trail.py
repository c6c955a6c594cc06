"""The audit trail in the database: append (chained), search, stream for export, verify, purge.

Appending takes the chain's head row with an UPDATE first, so the write lock (SQLite) or row lock
(PostgreSQL) is held while the previous hash is read: records from the server, the CLI and other
replicas interleave into one unbroken chain. After each append the external anchor (``anchor``) is moved
to the new record, in the background and coalesced: a burst of records is one file write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from smallyi.audit.anchor import Anchor, AnchorFile
from smallyi.audit.chain import MAC_V1, AuditKeys, Entry, Finding, HeadState, Report, Verifier, link
from smallyi.audit.crosscheck import Ledger, SessionRow, TaskRow
from smallyi.errors import StorageError
from smallyi.storage.db import Database
from smallyi.storage.models import AuditHead, AuditRecord, Task, TerminalSession, utcnow
from smallyi.storage.rows import affected

log = logging.getLogger(__name__)

BATCH = 2000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Search terms; each one left empty does not restrict. ``target`` and ``action`` match prefixes."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, q: Select[Any]) -> Select[Any]:
        if self.actor:
            q = q.where(AuditRecord.actor == self.actor)
        if self.action:
            q = q.where(AuditRecord.action.startswith(self.action, autoescape=True))
        if self.target:
            q = q.where(AuditRecord.target.contains(self.target, autoescape=True))
        if self.result:
            q = q.where(AuditRecord.result == self.result)
        if self.since:
            q = q.where(AuditRecord.at >= self.since)
        if self.until:
            q = q.where(AuditRecord.at < self.until)
        return q


def entry(r: AuditRecord) -> Entry:
    return Entry(r.id, r.at, r.actor, r.source, r.client, r.action, r.target, r.result, r.perm,
                 dict(r.detail or {}), r.prev_hash, r.hash, r.mac_version, r.mac_key, r.mac)


def head_state(h: AuditHead) -> HeadState:
    return HeadState(h.seq, h.hash, h.anchor_seq, h.anchor_hash, h.mac_from, h.mac_key, h.mac)


_HEAD_COLS = (AuditHead.seq, AuditHead.hash, AuditHead.anchor_seq, AuditHead.anchor_hash, AuditHead.mac_from)


class AuditTrail:
    """Append-only, hash-chained records, each MAC'd under ``keys``; ``source`` names the process kind."""

    def __init__(self, db: Database, *, keys: AuditKeys, source: str = "server",
                 anchor: AnchorFile | None = None) -> None:
        self.db = db
        self.keys = keys
        self.source = source
        #: the external anchor (None: not kept; tests of the chain alone)
        self.anchor = anchor
        self._lock = asyncio.Lock()
        self._warned = False
        self._pending: Anchor | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._anchor_warned: set[str] = set()  # each kind of anchor trouble is logged once a process

    def _signed_head(self, seq: int, h: str, anchor_seq: int, anchor_hash: str, mac_from: int) -> dict[str, Any]:
        """The head row's new values with their MAC."""
        state = HeadState(seq, h, anchor_seq, anchor_hash, mac_from)
        return {"hash": h, "anchor_seq": anchor_seq, "anchor_hash": anchor_hash, "mac_key": self.keys.current,
                "mac": self.keys.sign_head(state)}

    async def record(
        self, action: str, *, actor: str, result: str = "ok", target: str = "", client: str = "",
        detail: dict[str, Any] | None = None, perm: str = "", source: str | None = None,
    ) -> int:
        """Append one record; returns its id."""
        async with self._lock, self.db.session.begin() as s:
            seq, prev, anchor_seq, anchor_hash, mac_from, head_key, head_mac = (await s.execute(
                update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
                .returning(*_HEAD_COLS, AuditHead.mac_key, AuditHead.mac)
            )).one()
            sound = self._head_sound(HeadState(seq - 1, prev, anchor_seq, anchor_hash, mac_from, head_key, head_mac))
            # second precision is enough and survives every driver's round trip unchanged
            e = Entry(seq, utcnow().replace(microsecond=0), actor[:128], source or self.source, client[:255],
                      action[:64], target, result[:32], perm[:64], detail or {}, prev)
            h = link(prev, e)
            mac = self.keys.sign(seq, h)
            s.add(AuditRecord(id=seq, at=e.at, actor=e.actor, source=e.source, client=e.client, action=e.action,
                              target=e.target, result=e.result, perm=e.perm, detail=e.detail, prev_hash=prev,
                              hash=h, mac_version=MAC_V1, mac_key=self.keys.current, mac=mac))
            # a head row changed without the key is not signed again: that would launder the change
            # (records deleted from the end, the head moved back), so it stays visible to `audit verify`
            head = self._signed_head(seq, h, anchor_seq, anchor_hash, mac_from) if sound else {"hash": h, "mac": ""}
            await s.execute(update(AuditHead).where(AuditHead.id == 1).values(**head))
        if sound and self.anchor is not None:  # nor is the anchor moved over such a trail
            self._move_anchor(Anchor(seq, h, mac, mac_from, utcnow().isoformat(timespec="seconds")))
        return seq

    def _move_anchor(self, candidate: Anchor) -> None:
        if self._pending is None or candidate.seq > self._pending.seq:
            self._pending = candidate
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_anchor(), name="audit-anchor")

    async def _flush_anchor(self) -> None:
        while (candidate := self._pending) is not None:
            self._pending = None
            try:
                await self._advance(candidate)
            except Exception as exc:  # the record is in; the anchor lags until the next one
                self._warn_anchor("write", f"the audit anchor could not be written ({exc}); it is tried again "
                                           "with the next record")

    async def _advance(self, candidate: Anchor) -> None:
        """Move the anchor file to ``candidate``, unless the trail no longer holds the record it vouches for."""
        assert self.anchor is not None
        for _ in range(5):  # a compare-and-swap: another process may move it between the read and the write
            current = await asyncio.to_thread(self.anchor.read)
            if current is not None and current.seq >= candidate.seq:
                return
            if current is not None and not await self._still_holds(current, candidate):
                self._warn_anchor(
                    "refused", f"AUDIT: the trail no longer holds record {current.seq} as the anchor in {self.anchor.path} "
                    "recorded it (cut from the end, rewritten, or its MAC boundary moved); the anchor is not moved "
                    "over it. Run `small-yi audit verify`")
                return
            signed = candidate.signed(self.keys)
            if await asyncio.to_thread(self.anchor.advance, signed, over=current) == signed:
                return

    async def _still_holds(self, anchored: Anchor, candidate: Anchor) -> bool:
        if anchored.mac_from != candidate.mac_from or anchored.check(self.keys) is False:
            return False  # (an anchor written without the key is evidence too, not a base to build on)
        async with self.db.session() as s:
            row = await s.get(AuditRecord, anchored.seq)
            if row is None:  # purged since (an anchor older than the retention): nothing left to hold it against
                purged = await s.scalar(select(AuditHead.anchor_seq).where(AuditHead.id == 1))
                return purged is not None and purged >= anchored.seq
        return row.hash == anchored.hash and row.mac == anchored.mac

    def _warn_anchor(self, kind: str, message: str) -> None:
        if kind not in self._anchor_warned:
            self._anchor_warned.add(kind)
            log.error("%s", message)

    async def flush(self) -> None:
        """Wait until the anchor holds the last record written by this process (before a verify, or exit)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    def _head_sound(self, h: HeadState) -> bool:
        """Whether the head row is as small-yi last signed it (or, unsigned, as the MAC upgrade left it).

        An unknown key (an audit key since removed from the key file) cannot be judged and counts as sound. An
        unsigned head is the upgrade's state only where no anchor exists: an anchor is only ever written for a
        MAC'd record, so with one, an unsigned head had its MAC stripped.
        """
        ok = self.keys.check_head(h) is not False if h.mac else (h.mac_from == h.seq + 1 and not self._anchored())
        if not ok and not self._warned:
            self._warned = True
            log.error("AUDIT: the trail's head row does not match its MAC: it was changed without the audit key "
                      "(records deleted from the end?). It is not signed again; run `small-yi audit verify`")
        return ok

    def _anchored(self) -> bool:
        """Whether an anchor file exists (or cannot be told: an unreadable one counts)."""
        if self.anchor is None:
            return False
        try:
            return self.anchor.read() is not None
        except StorageError:
            return True

    async def safe_record(self, action: str, **kw: Any) -> None:
        """``record`` for hooks that must not fail their caller: a failure is logged loudly instead."""
        try:
            await self.record(action, **kw)
        except Exception:
            log.exception("AUDIT RECORD LOST: %s %s", action, {k: v for k, v in kw.items() if k != "detail"})

    async def search(self, f: AuditFilter, *, limit: int, offset: int) -> tuple[list[Entry], int]:
        """Newest first."""
        q = f.apply(select(AuditRecord))
        async with self.db.session() as s:
            total = await s.scalar(f.apply(select(func.count()).select_from(AuditRecord)))
            rows = (await s.scalars(q.order_by(AuditRecord.id.desc()).limit(limit).offset(offset))).all()
        return [entry(r) for r in rows], int(total or 0)

    async def stream(self, f: AuditFilter) -> AsyncIterator[Entry]:
        """Every matching record, oldest first, read in batches."""
        after = 0
        while True:
            q = f.apply(select(AuditRecord)).where(AuditRecord.id > after).order_by(AuditRecord.id).limit(BATCH)
            async with self.db.session() as s:
                rows = (await s.scalars(q)).all()
            if not rows:
                return
            for r in rows:
                yield entry(r)
            after = rows[-1].id

    async def head(self) -> AuditHead:
        async with self.db.session() as s:
            row = await s.get(AuditHead, 1)
        assert row is not None, "the 0005_security migration creates the head row"
        return row

    async def verify(self) -> Report:
        """Walk the whole chain from the purge anchor, checking each record's hash, link and MAC and the
        head's MAC, hold it against the external anchor, and hold the task and terminal session rows against
        their records; the report names every edited, deleted, forged or unrecorded thing."""
        await self.flush()
        external, unreadable = None, ""
        if self.anchor is not None:
            try:
                external = await asyncio.to_thread(self.anchor.read)
            except StorageError as exc:
                unreadable = exc.message
        head = await self.head()
        async with self.db.session() as s:
            top_task = int(await s.scalar(select(func.max(Task.id))) or 0)
            top_session = int(await s.scalar(select(func.max(TerminalSession.id))) or 0)
        v = Verifier(anchor_id=head.anchor_seq, anchor_hash=head.anchor_hash, keys=self.keys, mac_from=head.mac_from,
                     external=external, anchor_file=None if self.anchor is None or unreadable else str(self.anchor.path))
        ledger = Ledger(top_task=top_task, top_session=top_session, purged=head.anchor_seq > 0)
        async for e in self.stream(AuditFilter()):
            v.feed(e)
            ledger.feed(e)
        rep = v.finish(head_id=head.seq, head_hash=head.hash, head=head_state(head))
        if unreadable:
            rep.anchor_file = str(self.anchor.path) if self.anchor else ""
            rep.findings.append(Finding(0, 0, "unanchored", unreadable))
        async for e in self._stream_after(rep.last_id):  # written while we read: their rows are checked too
            ledger.feed(e)
        await self._check_rows(ledger, top_task, top_session)
        rep.findings += ledger.finish()
        rep.tasks_checked, rep.sessions_checked = ledger.tasks_checked, ledger.sessions_checked
        rep.rows_before_trail = ledger.before_trail
        return rep

    async def _stream_after(self, last: int) -> AsyncIterator[Entry]:
        async with self.db.session() as s:
            rows = (await s.scalars(select(AuditRecord).where(AuditRecord.id > last).order_by(AuditRecord.id)
                                    .limit(BATCH))).all()
        for r in rows:
            yield entry(r)

    async def _check_rows(self, ledger: Ledger, top_task: int, top_session: int) -> None:
        """Every task and terminal session up to the given ids, in batches, against the ledger."""
        after = 0
        while True:
            async with self.db.session() as s:
                tasks = (await s.execute(
                    select(Task.id, Task.created_by, Task.command, Task.created_at)
                    .where(Task.id > after, Task.id <= top_task).order_by(Task.id).limit(BATCH))).all()
            if not tasks:
                break
            for tid, by, command, at in tasks:
                ledger.task(TaskRow(tid, by, command, at))
            after = tasks[-1][0]
        after = 0
        while True:
            async with self.db.session() as s:
                sessions = (await s.execute(
                    select(TerminalSession.id, TerminalSession.username, TerminalSession.host_name,
                           TerminalSession.started_at)
                    .where(TerminalSession.id > after, TerminalSession.id <= top_session)
                    .order_by(TerminalSession.id).limit(BATCH))).all()
            if not sessions:
                break
            for sid, user, host, at in sessions:
                ledger.session(SessionRow(sid, user, host, at))
            after = sessions[-1][0]

    async def last_use(self, since: datetime) -> dict[tuple[str, str], datetime]:
        """(actor, permission) → the latest record using it since ``since`` (for the rights report)."""
        q = (select(AuditRecord.actor, AuditRecord.perm, func.max(AuditRecord.at))
             .where(AuditRecord.at >= since, AuditRecord.perm != "")
             .group_by(AuditRecord.actor, AuditRecord.perm))
        async with self.db.session() as s:
            return {(a, p): at for a, p, at in (await s.execute(q)).all()}

    async def last_action(self, action: str, since: datetime) -> dict[str, datetime]:
        """actor → the latest successful ``action`` since ``since`` (e.g. logins)."""
        q = (select(AuditRecord.actor, func.max(AuditRecord.at))
             .where(AuditRecord.at >= since, AuditRecord.action == action, AuditRecord.result == "ok")
             .group_by(AuditRecord.actor))
        async with self.db.session() as s:
            return {a: at for a, at in (await s.execute(q)).all()}

    async def _check_expired(self, s: AsyncSession, head: HeadState, stop: int) -> tuple[int, str, list[Finding]]:
        """Verify the records a purge would delete (ids below ``stop``) and their link to what stays, inside
        the purge's transaction: (the last such id, its hash, the findings about them)."""
        v = Verifier(anchor_id=head.anchor_seq, anchor_hash=head.anchor_hash, keys=self.keys, mac_from=head.mac_from)
        after = head.anchor_seq
        while rows := (await s.scalars(select(AuditRecord).where(AuditRecord.id > after, AuditRecord.id < stop)
                                       .order_by(AuditRecord.id).limit(BATCH))).all():
            for r in rows:
                v.feed(entry(r))
            after = rows[-1].id
        last, last_hash = v.report.last_id, v.report.last_hash
        if last == head.anchor_seq:
            return last, last_hash, []  # nothing to delete
        kept = await s.scalar(select(AuditRecord).where(AuditRecord.id >= stop).order_by(AuditRecord.id).limit(1))
        if kept is not None:
            v.feed(entry(kept))  # does it link to the last record deleted? (its own findings are not ours)
        else:
            v.finish(head_id=head.seq, head_hash=head.hash)
        return last, last_hash, [f for f in v.report.findings if f.first <= last]

    async def purge(self, *, older_than_days: int, actor: str = "system") -> int:
        """Delete the oldest records, up to the first (by id) that is not older than the retention, keeping
        the last one's hash as the anchor; records the purge itself.

        A record backdated by hand must not take younger ones with it, so the purge stops at the first
        young record whatever comes after it; and it deletes only a stretch whose chain and MACs verify, since
        deleting tampered records would erase the evidence (and the new anchor would hide the gap). A
        stretch that does not verify is left whole: the refusal is logged, recorded and raised.
        """
        cutoff = utcnow() - timedelta(days=older_than_days)
        async with self._lock, self.db.session.begin() as s:
            seq, h, anchor_seq, anchor_hash, mac_from, head_key, head_mac = (await s.execute(  # lock the head
                update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq)
                .returning(*_HEAD_COLS, AuditHead.mac_key, AuditHead.mac))).one()
            young = await s.scalar(select(func.min(AuditRecord.id)).where(AuditRecord.at >= cutoff))
            head = HeadState(seq, h, anchor_seq, anchor_hash, mac_from, head_key, head_mac)
            if self._head_sound(head):
                last, last_hash, findings = await self._check_expired(s, head, seq + 1 if young is None else young)
            else:  # a purge signs a new head: never over one changed without the key
                last, last_hash = anchor_seq + 1, ""
                findings = [Finding(seq, seq, "forged", "the trail's head row was changed by someone without the "
                                                        "audit key")]
            n = 0
            if last > anchor_seq and not findings:
                res = await s.execute(delete(AuditRecord).where(AuditRecord.id <= last))
                n = affected(res)
                await s.execute(update(AuditHead).where(AuditHead.id == 1)
                                .values(**self._signed_head(seq, h, last, last_hash, mac_from)))
        if findings:
            await self._refuse(findings, anchor_seq + 1, last, older_than_days=older_than_days, actor=actor)
        await self.record("audit.purge", actor=actor, result="ok", perm="audit.purge",
                          detail={"deleted": n, "older_than_days": older_than_days, "through_id": last if n else 0})
        if n:
            log.info("audit: purged %d records older than %d days", n, older_than_days)
        return n

    async def _refuse(self, findings: list[Finding], first: int, last: int, *, older_than_days: int,
                      actor: str) -> NoReturn:
        """Log, record and raise a purge refused because the records it would delete do not verify."""
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        message = (f"audit purge refused: records {first} to {last} are past the retention but do not verify "
                   f"({findings[0].message}{more}); deleting them would erase the evidence, so nothing was deleted. "
                   "Run `small-yi audit verify` for every finding")
        log.error("%s", message)
        await self.record("audit.purge", actor=actor, result="refused", perm="audit.purge", detail={
            "deleted": 0, "older_than_days": older_than_days, "through_id": 0,
            "findings": [f.message for f in findings[:20]]})
        raise StorageError(message)
