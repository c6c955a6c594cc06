"""Users, login sessions and API tokens, backed by the database.

Config users are the source of truth for their accounts: every start re-syncs their hash and role
and disables config users that were removed from the file (their tokens stop working).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from smallyi.auth.passwords import DUMMY_HASH, verify_password
from smallyi.auth.throttle import LoginThrottle
from smallyi.auth.tokens import API_PREFIX, SESSION_PREFIX, digest, new_token
from smallyi.config import AuthSettings
from smallyi.errors import AuthError, InputError, NotFound, Throttled
from smallyi.storage.db import Database
from smallyi.storage.models import ApiToken, User, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from a bearer token."""

    user_id: int
    username: str
    role: str
    token_id: int
    token_kind: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    kind: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class AuthService:
    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.db = db
        self.settings = settings
        self.throttle = LoginThrottle(max_failures=settings.login_max_failures, window=settings.login_window)

    async def sync_config_users(self) -> None:
        """Make the users table match the config's users (hash, role); disable removed ones."""
        wanted = {u.username: u for u in self.settings.users}
        async with self.db.session.begin() as s:
            existing = {u.username: u for u in (await s.scalars(select(User))).all()}
            for name, cfg in wanted.items():
                row = existing.get(name)
                if row is None:
                    s.add(User(username=name, role=cfg.role, password_hash=cfg.password_hash, source="config"))
                    continue
                if row.password_hash != cfg.password_hash:
                    # a changed password ends every session of that user
                    await s.execute(
                        update(ApiToken)
                        .where(ApiToken.user_id == row.id, ApiToken.kind == "session")
                        .values(revoked_at=utcnow())
                    )
                row.password_hash, row.role, row.disabled = cfg.password_hash, cfg.role, False
            for name, row in existing.items():
                if row.source == "config" and name not in wanted and not row.disabled:
                    row.disabled = True
                    log.info("user %s is no longer in the config: disabled", name)

    async def login(self, username: str, password: str, client: str) -> str:
        """A new session token, or AuthError / Throttled. Failures are throttled per user and client."""
        wait = self.throttle.retry_after(username, client)
        if wait > 0:
            raise Throttled(
                f"too many failed logins for {username!r} from {client}; try again in {int(wait) + 1}s",
                retry_after=wait,
            )
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == username))
        ok = verify_password(password, user.password_hash if user else DUMMY_HASH)
        if not ok or user is None or user.disabled:
            self.throttle.failed(username, client)
            log.info("failed login for user %r from %s", username, client)
            raise AuthError("wrong username or password")
        self.throttle.succeeded(username, client)
        token = new_token(SESSION_PREFIX)
        expires = utcnow() + timedelta(seconds=self.settings.session_ttl)
        async with self.db.session.begin() as s:
            s.add(
                ApiToken(
                    user_id=user.id, kind="session", name="login", token_hash=digest(token),
                    prefix=token[:10], expires_at=expires,
                )
            )
        log.info("user %s logged in from %s", username, client)
        return token

    async def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; AuthError if unknown, expired, revoked or disabled."""
        if not token.startswith((SESSION_PREFIX, API_PREFIX)):
            raise AuthError("invalid token; log in again or create an API token")
        now = utcnow()
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                    .where(ApiToken.token_hash == digest(token))
                )
            ).first()
        if row is None:
            raise AuthError("invalid token; log in again or create an API token")
        tok, user = row
        if tok.revoked_at is not None:
            raise AuthError("this token was revoked or its session logged out; log in again")
        if tok.expires_at is not None and tok.expires_at <= now:
            raise AuthError("this session expired; log in again")
        if user.disabled:
            raise AuthError(f"user {user.username!r} is disabled")
        if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
            async with self.db.session.begin() as s:
                await s.execute(update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now))
        return Principal(user.id, user.username, user.role, tok.id, tok.kind)

    async def logout(self, principal: Principal) -> None:
        await self._revoke(principal.token_id)

    async def create_api_token(self, principal: Principal, name: str, ttl: float | None = None) -> tuple[str, TokenInfo]:
        """A new long-lived token for ``principal``'s user; the token text is returned only here."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InputError("token name must be 1 to 128 characters", field="name")
        token = new_token(API_PREFIX)
        row = ApiToken(
            user_id=principal.user_id, kind="api", name=name, token_hash=digest(token), prefix=token[:10],
            expires_at=utcnow() + timedelta(seconds=ttl) if ttl else None,
        )
        async with self.db.session.begin() as s:
            s.add(row)
        return token, _info(row)

    async def list_api_tokens(self, principal: Principal) -> list[TokenInfo]:
        async with self.db.session() as s:
            rows = await s.scalars(
                select(ApiToken)
                .where(ApiToken.user_id == principal.user_id, ApiToken.kind == "api", ApiToken.revoked_at.is_(None))
                .order_by(ApiToken.id.desc())
            )
            return [_info(r) for r in rows]

    async def revoke_api_token(self, principal: Principal, token_id: int) -> None:
        async with self.db.session() as s:
            row = await s.get(ApiToken, token_id)
        if row is None or row.user_id != principal.user_id or row.kind != "api" or row.revoked_at:
            raise NotFound(f"API token {token_id} not found among your tokens")
        await self._revoke(token_id)

    async def _revoke(self, token_id: int) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))


def _info(r: ApiToken) -> TokenInfo:
    return TokenInfo(r.id, r.name, r.prefix, r.kind, r.created_at, r.expires_at, r.last_used_at)
