"""Reloading a running server's config file: all of it checked first, then what can change live applied.

SIGHUP to ``small-yi serve``, ``small-yi reload`` and ``POST /api/v1/admin/reload`` all come here. The
new file is loaded and validated whole, as at start (``auth.config_check``: roles, users' roles, policy
rules, key settings), its ``secret:NAME`` references and SSH key secret read; any problem refuses the
reload: nothing changes, the server keeps running on the config it had, and the report names it. Otherwise the config users are
synced to the database (as ``small-yi users sync``), then the runtime takes the new settings
(``Runtime.apply_config``); keys that wait for a restart (``config_changes.RESTART``) keep their
running values and are named in the report, at every reload until the server restarts. One reload at
a time; each is audited (``config.reload``: who, how, the changed keys, no secret values) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smallyi.approvals.withdraw import Withdrawal
from smallyi.auth import config_check
from smallyi.auth.service import AuthService
from smallyi.config import Settings, load_settings
from smallyi.config_changes import Change, compare, merge
from smallyi.errors import SmallYiError
from smallyi.runtime import Runtime, read_ssh_key
from smallyi.secrets import redact, refs
from smallyi.timestamps import from_unix

log = logging.getLogger(__name__)

_ATTR = "reloader"


@dataclass(frozen=True)
class Report:
    """What one reload did: ``reloaded`` (something differed), ``unchanged`` or ``refused`` (``error``)."""

    status: str
    config: str
    #: who asked (a user, ``cli:<login>``, or ``signal`` for a SIGHUP from a process manager)
    by: str
    #: api | signal
    via: str
    #: ``time.time_ns()`` when the reload began (``small-yi reload`` waits for one begun after its signal)
    started_ns: int
    changes: tuple[Change, ...] = ()
    error: str = ""
    finished_ns: int = field(default_factory=time.time_ns)

    @property
    def applied(self) -> list[Change]:
        return [c for c in self.changes if c.live]

    @property
    def waiting(self) -> list[Change]:
        """The changes that need a restart."""
        return [c for c in self.changes if not c.live]

    def message(self) -> str:
        """One paragraph: what was applied, what needs a restart, or why nothing changed."""
        if self.status == "refused":
            return f"reload refused, nothing changed (the server keeps running on its previous config): {self.error}"
        if self.status == "unchanged":
            return f"reloaded {self.config}: nothing changed"
        applied = "; ".join(c.describe() for c in self.applied) or "nothing"
        text = f"reloaded {self.config}: applied {applied}"
        if self.waiting:
            text += "; needs a restart: " + "; ".join(c.describe() for c in self.waiting)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "config": self.config, "by": self.by, "via": self.via,
                "started_at": from_unix(self.started_ns / 1e9), "finished_at": from_unix(self.finished_ns / 1e9), "started_ns": self.started_ns,
                "changed": [c.to_dict() for c in self.changes],
                "applied": [c.key for c in self.applied],
                "restart": [c.to_dict() for c in self.waiting],
                "error": self.error or None, "message": self.message()}


class Reloader:
    """Reloads ``path`` into ``rt`` on request; see the module docstring."""

    def __init__(self, rt: Runtime, path: Path, *, listen: str | None = None, file_listen: str | None = None) -> None:
        """``listen``: ``serve --listen``, which overrides the file's ``server.listen`` (``file_listen``)."""
        self.rt = rt
        self.path = path.resolve()
        self.listen = listen
        #: the file's settings as the server runs them (without ``--listen``): what a reload compares with
        self.applied = rt.settings
        if listen is not None and file_listen is not None:
            self.applied = _listening(rt.settings, file_listen)
        self._lock = asyncio.Lock()

    async def reload(self, *, by: str, via: str, client: str = "") -> Report:
        """Reload now (after any reload under way); a refused reload is a report too, never an exception."""
        async with self._lock:
            started = time.time_ns()
            try:
                changes = await self._apply()
            except SmallYiError as exc:
                where = str(self.path)
                error = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
                report = Report("refused", where, by, via, started, error=error)
                log.error("config reload (asked by %s via %s): %s", by, via, report.message())
            else:
                report = Report("reloaded" if changes else "unchanged", str(self.path), by, via, started,
                                tuple(changes))
                log.info("config reload (asked by %s via %s): %s", by, via, report.message())
                if report.waiting:
                    log.warning("config: %d change(s) need a restart of the server: %s", len(report.waiting),
                                "; ".join(c.describe() for c in report.waiting))
            await self._record(report, client)
            return report

    async def _apply(self) -> list[Change]:
        new = load_settings(self.path)
        roles, policy = config_check.check(new)  # as at start: roles, users' roles, policy rules, key settings
        new = await refs.resolve(new, self.rt.secrets.get)
        ssh_key = await read_ssh_key(new, self.rt.secrets)
        changes = compare(self.applied, new)
        if ssh_key != self.rt.ssh_key and not any(c.key == "ssh.private_key_secret" for c in changes):
            changes.append(Change("ssh.private_key_secret", "the stored key changed"))
        if self.listen is not None:
            changes = [_overridden(c, self.listen) if c.key == "server.listen" else c for c in changes]
        merged = merge(self.applied, new, changes)
        running = merged if self.listen is None else _listening(merged, self.listen)
        # the users table first: if the database refuses, nothing else has changed either
        syncing = AuthService(self.rt.db, running.auth, roles=roles, audit=self.rt.audit,
                              withdraw=Withdrawal(self.rt.db))
        try:
            await syncing.sync_config_users()
        finally:
            syncing.close()
        await self.rt.apply_config(running, roles=roles, policy=policy, ssh_key=ssh_key)
        self.applied = merged
        return changes

    async def _record(self, report: Report, client: str) -> None:
        detail: dict[str, Any] = {"via": report.via, "changed": [c.to_dict() for c in report.changes],
                                  "applied": [c.key for c in report.applied],
                                  "restart": [c.key for c in report.waiting]}
        if report.error:
            detail["error"] = redact.shared().redact(report.error)
        await self.rt.audit.safe_record(
            "config.reload", actor=report.by, client=client, target=report.config,
            result={"reloaded": "ok"}.get(report.status, report.status), perm="config.reload",
            source="api" if report.via == "api" else None, detail=detail)


def attach(rt: Runtime, reloader: Reloader) -> None:
    """Make ``reloader`` the runtime's (the API's reload route finds it with :func:`of`)."""
    setattr(rt, _ATTR, reloader)  # the runtime is not ours to declare fields on


def of(rt: object) -> Reloader | None:
    """The reloader of a server started from a config file; None for a runtime built otherwise (tests)."""
    found = getattr(rt, _ATTR, None)
    return found if isinstance(found, Reloader) else None


def _listening(s: Settings, listen: str) -> Settings:
    return s.model_copy(update={"server": s.server.model_copy(update={"listen": listen})})


def _overridden(c: Change, listen: str) -> Change:
    return Change(c.key, f"{c.detail}; `serve --listen {listen}` overrides it", c.restart)
