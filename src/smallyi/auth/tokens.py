"""Bearer tokens: random, shown once, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import secrets

SESSION_PREFIX = "sys_"
API_PREFIX = "syt_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
