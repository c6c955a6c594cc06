"""Host keys trusted on first use, pinned in the database (``ssh.host_key_policy: accept-new``).

The SSH connectors consult it through ``execution.connectors.ssh_keys.PinStore``: pins are held in
memory, refreshed from the database before new connections (so the CLI and every replica share
them), and new pins and changed keys are written and audited in the background. A changed key is
never accepted: the host ends ``unreachable`` with "host key changed" and an audit record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from smallyi.audit.trail import AuditTrail
from smallyi.errors import NotFound
from smallyi.storage.db import Database
from smallyi.storage.models import HostKeyPin
from smallyi.storage.rows import affected
from smallyi.timestamps import iso

log = logging.getLogger(__name__)


class HostKeyPins:
    def __init__(self, db: Database, audit: AuditTrail | None = None, *, refresh_every: float = 2.0) -> None:
        self.db = db
        self.audit = audit
        self.refresh_every = refresh_every
        self._lines: dict[tuple[str, str], str] = {}
        self.generation = 0
        self._fresh_at = 0.0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def refresh(self) -> None:
        if time.monotonic() - self._fresh_at < self.refresh_every:
            return
        async with self._lock:
            if time.monotonic() - self._fresh_at < self.refresh_every:
                return
            async with self.db.session() as s:
                rows = (await s.scalars(select(HostKeyPin))).all()
            lines = {(r.host, r.key_type): f"{r.host} {r.key_type} {r.key}" for r in rows}
            if any(k not in lines for k in self._lines):
                self.generation += 1  # forgotten by another process
            self._lines = lines
            self._fresh_at = time.monotonic()

    def lines(self) -> Iterable[str]:
        return list(self._lines.values())

    def pin(self, host: str, key_line: str, fingerprint: str) -> None:
        _host, key_type, key = key_line.split()[:3]
        self._lines[(host, key_type)] = key_line
        self._spawn(self._store(host, key_type, key, fingerprint))

    def changed(self, host: str, fingerprint: str) -> None:
        log.warning("host key of %s CHANGED (now %s): refused; if the host was reinstalled, run "
                    "`small-yi hostkeys forget %s`", host, fingerprint, host)
        if self.audit is not None:
            self._spawn(self.audit.safe_record("hostkey.changed", actor="", target=host, result="denied",
                                               detail={"offered": fingerprint}))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _store(self, host: str, key_type: str, key: str, fingerprint: str) -> None:
        try:
            async with self.db.session.begin() as s:
                s.add(HostKeyPin(host=host, key_type=key_type, key=key, fingerprint=fingerprint))
        except IntegrityError:
            return  # pinned meanwhile by another process; the next refresh reads theirs
        except Exception:
            log.exception("pinning the host key of %s failed", host)
            return
        log.info("pinned the host key of %s (%s) on first use", host, fingerprint)
        if self.audit is not None:
            await self.audit.safe_record("hostkey.pinned", actor="", target=host, detail={"fingerprint": fingerprint})

    async def trust(self, host: str, key_line: str, fingerprint: str, *, actor: str) -> bool:
        """Pin a key an operator confirmed (``hostkeys scan``); False if the host was pinned meanwhile. Audited."""
        _host, key_type, key = key_line.split()[:3]
        try:
            async with self.db.session.begin() as s:
                s.add(HostKeyPin(host=host, key_type=key_type, key=key, fingerprint=fingerprint))
        except IntegrityError:
            return False
        self._lines[(host, key_type)] = key_line
        if self.audit is not None:
            await self.audit.record("hostkey.pinned", actor=actor, target=host, perm="hostkeys.write",
                                    detail={"fingerprint": fingerprint, "how": "scan"})
        return True

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            rows = (await s.scalars(select(HostKeyPin).order_by(HostKeyPin.host))).all()
        return [{"host": r.host, "key_type": r.key_type, "fingerprint": r.fingerprint, "pinned_at": iso(r.pinned_at)}
                for r in rows]

    async def forget(self, host: str) -> int:
        """Drop a host's pins (after a reinstall): its next key is trusted on first use again."""
        async with self.db.session.begin() as s:
            res = await s.execute(delete(HostKeyPin).where(HostKeyPin.host == host))
        n = affected(res)
        if not n:
            raise NotFound(f"no pinned host key for {host!r}; `small-yi hostkeys list` shows the pinned hosts")
        for k in [k for k in self._lines if k[0] == host]:
            del self._lines[k]
        self._fresh_at = 0.0
        self.generation += 1
        return n

    async def drain(self) -> None:
        """Wait for background writes (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
