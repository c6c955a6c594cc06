"""Per-user console preferences (the language first), kept in the database so they follow the user."""

from __future__ import annotations

from typing import Any

from smallyi.errors import InputError
from smallyi.storage.db import Database
from smallyi.storage.models import UserPreference

LANGUAGES = ("en", "zh-CN")
#: free-form settings a client may keep besides the language, and their largest JSON size
MAX_DATA_KEYS = 50


class Preferences:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, username: str) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await s.get(UserPreference, username)
        if row is None:
            return {"language": None, "data": {}}
        return {"language": row.language, "data": dict(row.data or {})}

    async def update(self, username: str, *, language: str | None = None,
                     data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Change the given settings; ``data`` keys are merged (a ``None`` value removes one)."""
        if language is not None and language not in LANGUAGES:
            raise InputError(f"language: {language!r} is not one of {', '.join(LANGUAGES)}", field="language")
        async with self.db.session.begin() as s:
            row = await s.get(UserPreference, username)
            if row is None:
                row = UserPreference(username=username, language=language or "en", data={})
                s.add(row)
            elif language is not None:
                row.language = language
            if data:
                merged = dict(row.data or {})
                for k, v in data.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                if len(merged) > MAX_DATA_KEYS:
                    raise InputError(f"data: at most {MAX_DATA_KEYS} settings", field="data")
                row.data = merged
            return {"language": row.language, "data": dict(row.data or {})}
