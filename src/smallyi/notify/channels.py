"""Where channels live: the config's (read-only) and the database's (URL and secret encrypted at rest).

The API never returns a channel's URL or secret (a WeCom or DingTalk URL is itself a credential):
:func:`channel_dict` shows the host of the URL and whether a secret is set.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.config import ChannelSettings
from smallyi.errors import Conflict, InputError, NotFound
from smallyi.notify.base import KINDS, Channel
from smallyi.secrets.box import Box
from smallyi.secrets.redact import Redactor
from smallyi.storage.db import Database
from smallyi.storage.models import NotifyChannel, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_channel(name: str, kind: str, url: str) -> None:
    if not NAME_RE.match(name):
        raise InputError(f"channel name {name!r}: use letters, digits, '.', '_' and '-'", field="name")
    if kind not in KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"url: {redact_url(url)!r} is not an http(s) URL", field="url")


def redact_url(url: str) -> str:
    """Scheme and host only: the path and query of a bot URL hold its key."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..." if parts.netloc else "***"


def channel_dict(ch: Channel, *, source: str, enabled: bool = True, description: str = "",
                 created_by: str = "", created_at: datetime | None = None) -> dict[str, Any]:
    return {"name": ch.name, "kind": ch.kind, "url": redact_url(ch.url), "has_secret": bool(ch.secret),
            "options": dict(ch.options), "source": source, "enabled": enabled, "description": description,
            "created_by": created_by or None, "created_at": iso(created_at)}


def _seal(row: NotifyChannel, box: Box, url: str, secret: str) -> None:
    """Encrypt a channel's URL and secret into its row, each bound to the channel's name."""
    row.url_cipher = box.encrypt(url.encode(), name=f"notify:{row.name}:url")
    row.secret_cipher = box.encrypt(secret.encode(), name=f"notify:{row.name}:secret") if secret else ""


class ChannelStore:
    #: its rows hold ciphertext under the master key: ``secrets rotate`` re-encrypts them (``secrets.store.Sealed``)
    sealed_kind = "notification channel"

    def __init__(self, db: Database, configured: Mapping[str, ChannelSettings], box: Box,
                 redactor: Redactor | None = None) -> None:
        self.db = db
        self.box = box
        self.redactor = redactor
        self.configured: dict[str, Channel] = {}
        self.configure(configured)

    def configure(self, configured: Mapping[str, ChannelSettings]) -> None:
        """The config's channels (at start, and from a reloaded config: the next message uses them)."""
        self.configured = {n: Channel(n, c.kind, c.url, c.secret, dict(c.options)) for n, c in configured.items()}
        for ch in self.configured.values():
            self._hide(ch)

    def _hide(self, ch: Channel) -> None:
        if self.redactor is not None:
            self.redactor.add(ch.url)
            if ch.secret:
                self.redactor.add(ch.secret)

    def _decrypt(self, row: NotifyChannel) -> Channel:
        url = self.box.decrypt(row.url_cipher, name=f"notify:{row.name}:url").decode()
        secret = self.box.decrypt(row.secret_cipher, name=f"notify:{row.name}:secret").decode() \
            if row.secret_cipher else ""
        ch = Channel(row.name, row.kind, url, secret, dict(row.options))
        self._hide(ch)
        return ch

    async def get(self, name: str) -> Channel:
        """The channel with its secrets, for sending; NotFound if neither the config nor the database has it."""
        if name in self.configured:
            return self.configured[name]
        async with self.db.session() as s:
            row = await s.scalar(select(NotifyChannel).where(NotifyChannel.name == name))
        if row is None or not row.enabled:
            raise NotFound(f"no notification channel named {name!r}"
                           + (" (it is disabled)" if row is not None else ""), field="channel")
        return self._decrypt(row)

    async def names(self) -> set[str]:
        async with self.db.session() as s:
            rows = (await s.scalars(select(NotifyChannel.name))).all()
        return set(self.configured) | set(rows)

    async def list(self) -> list[dict[str, Any]]:
        out = [channel_dict(ch, source="config") for ch in self.configured.values()]
        async with self.db.session() as s:
            rows = (await s.scalars(select(NotifyChannel).order_by(NotifyChannel.name))).all()
        for r in rows:
            out.append(channel_dict(self._decrypt(r), source="api", enabled=r.enabled, description=r.description,
                                    created_by=r.created_by, created_at=r.created_at))
        return sorted(out, key=lambda c: str(c["name"]))

    async def describe(self, name: str) -> dict[str, Any]:
        if name in self.configured:
            return channel_dict(self.configured[name], source="config")
        async with self.db.session() as s:
            row = await s.scalar(select(NotifyChannel).where(NotifyChannel.name == name))
        if row is None:
            raise NotFound(f"no notification channel named {name!r}", field="channel")
        return channel_dict(self._decrypt(row), source="api", enabled=row.enabled, description=row.description,
                            created_by=row.created_by, created_at=row.created_at)

    async def put(self, name: str, *, kind: str, url: str, secret: str = "", options: Mapping[str, Any] | None = None,
                  description: str = "", enabled: bool = True, by: str = "", create: bool = False) -> dict[str, Any]:
        """Create (``create``: Conflict if it exists) or replace a database channel."""
        check_channel(name, kind, url)
        if name in self.configured:
            raise Conflict(f"channel {name!r} is defined in the config (notify.channels); change it there")
        now = utcnow()
        async with self.db.session.begin() as s:
            row = await s.scalar(select(NotifyChannel).where(NotifyChannel.name == name))
            if row is not None and create:
                raise Conflict(f"channel {name!r} already exists; PUT /api/v1/notifications/channels/{name} "
                               "replaces it")
            if row is None:
                row = NotifyChannel(name=name, created_by=by, created_at=now)
                s.add(row)
            row.kind, row.description, row.options, row.enabled, row.updated_at = (
                kind, description, dict(options or {}), enabled, now)
            _seal(row, self.box, url, secret)
        self._hide(Channel(name, kind, url, secret))
        return await self.describe(name)

    async def delete(self, name: str) -> None:
        if name in self.configured:
            raise Conflict(f"channel {name!r} is defined in the config (notify.channels); remove it there")
        async with self.db.session.begin() as s:
            res = await s.execute(delete(NotifyChannel).where(NotifyChannel.name == name))
        if not affected(res):
            raise NotFound(f"no notification channel named {name!r}", field="channel")

    async def reencrypt(self, s: AsyncSession, new: Box) -> int:
        """Re-encrypt every database channel under ``new``'s current key within the rotation's transaction."""
        rows = (await s.scalars(select(NotifyChannel))).all()
        for row in rows:
            ch = self._decrypt(row)
            _seal(row, new, ch.url, ch.secret)
        return len(rows)
