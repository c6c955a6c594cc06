"""Secrets in the database, encrypted; read back only by small-yi itself (never by the API)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.errors import InputError, NotFound
from smallyi.secrets.box import Box
from smallyi.secrets.redact import Redactor
from smallyi.storage.db import Database
from smallyi.storage.models import SecretValue, utcnow
from smallyi.storage.rows import affected
from smallyi.timestamps import iso

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = ("ssh-key", "password", "webhook", "token", "other")
MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What the API may show of a secret: everything but its value."""

    name: str
    kind: str
    description: str
    key_id: str
    created_at: datetime
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description, "key_id": self.key_id,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at), "updated_by": self.updated_by}


def _info(r: SecretValue) -> SecretInfo:
    return SecretInfo(r.name, r.kind, r.description, r.key_id, r.created_at, r.updated_at, r.updated_by)


class Sealed(Protocol):
    """A store whose rows hold ciphertext under the master key. Every such store implements this and is
    listed in ``Runtime.sealed_stores``, so a rotation re-encrypts all of them, not only the secrets."""

    #: what one of its rows is, for the rotation's report and audit record ("secret", "notification channel")
    sealed_kind: str
    box: Box

    async def reencrypt(self, s: AsyncSession, new: Box) -> int:
        """Re-encrypt every row under ``new``'s current key inside ``s``; returns how many rows."""
        ...


async def reencrypt_all(db: Database, stores: Sequence[Sealed], new: Box) -> dict[str, int]:
    """Re-encrypt every store's rows under ``new`` in one transaction (all or nothing: a row that does not
    decrypt rolls back every store); the stores use ``new`` only once it is committed. Rows by kind."""
    async with db.session.begin() as s:
        counts = {st.sealed_kind: await st.reencrypt(s, new) for st in stores}
    for st in stores:
        st.box = new
    return counts


class SecretStore:
    sealed_kind = "secret"

    def __init__(self, db: Database, box: Box, *, redactor: Redactor | None = None) -> None:
        self.db = db
        self.box = box
        self.redactor = redactor

    async def put(self, name: str, value: str, *, kind: str = "other", description: str = "", by: str = "") -> SecretInfo:
        if not NAME_RE.match(name):
            raise InputError(f"secret name {name!r}: use letters, digits, '.', '_' and '-'", field="name")
        if kind not in KINDS:
            raise InputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
        if not value or len(value.encode()) > MAX_BYTES:
            raise InputError(f"value: give 1 byte to {MAX_BYTES // 1024} KiB", field="value")
        token = self.box.encrypt(value.encode(), name=name)
        now = utcnow()
        async with self.db.session.begin() as s:
            row = await s.get(SecretValue, name)
            if row is None:
                row = SecretValue(name=name, created_at=now)
                s.add(row)
            row.kind, row.description, row.key_id, row.ciphertext = kind, description, self.box.current, token
            row.updated_at, row.updated_by = now, by
        if self.redactor is not None:
            self.redactor.add(value)
        return _info(row)

    async def get(self, name: str) -> str:
        """The plaintext, for small-yi's own use (connecting, signing webhooks)."""
        async with self.db.session() as s:
            row = await s.get(SecretValue, name)
        if row is None:
            raise NotFound(f"secret {name!r} not found; store it with PUT /api/v1/secrets/{name}")
        value = self.box.decrypt(row.ciphertext, name=name).decode()
        if self.redactor is not None:
            self.redactor.add(value)
        return value

    async def list(self) -> list[SecretInfo]:
        async with self.db.session() as s:
            return [_info(r) for r in (await s.scalars(select(SecretValue).order_by(SecretValue.name))).all()]

    async def delete(self, name: str) -> None:
        async with self.db.session.begin() as s:
            res = await s.execute(delete(SecretValue).where(SecretValue.name == name))
        if not affected(res):
            raise NotFound(f"secret {name!r} not found")

    async def reencrypt(self, s: AsyncSession, new: Box) -> int:
        """Re-encrypt every secret under ``new``'s current key within the rotation's transaction ``s``."""
        rows = (await s.scalars(select(SecretValue))).all()
        for row in rows:
            plain = self.box.decrypt(row.ciphertext, name=row.name)
            row.ciphertext, row.key_id = new.encrypt(plain, name=row.name), new.current
        return len(rows)
