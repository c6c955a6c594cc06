"""Users, login sessions and API tokens, backed by the database.

Config users are the source of truth for their accounts: every start re-syncs their hash and role
and disables config users that were removed from the file (their tokens stop working).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import select, update

from smallyi.audit.trail import AuditTrail
from smallyi.auth import report
from smallyi.auth.passwords import DUMMY_HASH, PasswordChecker
from smallyi.auth.rbac import Access, RoleBook
from smallyi.auth.report import UserRow
from smallyi.auth.throttle import LoginThrottle
from smallyi.auth.tokens import API_PREFIX, SESSION_PREFIX, digest, new_token
from smallyi.config import AuthSettings
from smallyi.errors import AuthError, ConfigError, InputError, NotFound, Throttled
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
    #: what the user may do, and on which groups (none unless resolved from the user's role)
    access: Access = field(default_factory=Access.none, compare=False)

    @classmethod
    def local(cls, username: str) -> Principal:
        """The local CLI's caller: whoever can read the config and the database holds every right anyway."""
        return cls(0, username, "admin", 0, "local", Access.full(username))


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
    def __init__(self, db: Database, settings: AuthSettings, *, roles: RoleBook | None = None,
                 audit: AuditTrail | None = None) -> None:
        self.db = db
        self.settings = settings
        self.roles = roles or RoleBook.build({})
        self.audit = audit
        self.throttle = LoginThrottle(max_failures=settings.login_max_failures, window=settings.login_window,
                                      max_address_failures=settings.address_max_failures)
        self.passwords = PasswordChecker()
        self._busy_warned = -60.0

    def close(self) -> None:
        """Stop the password-check threads."""
        self.passwords.close()

    async def sync_config_users(self) -> None:
        """Make the users table match the config's users (hash, role, groups); disable removed ones."""
        wanted = {u.username: u for u in self.settings.users}
        for u in wanted.values():
            try:
                self.roles.perms(u.role)
            except ConfigError as exc:
                raise ConfigError(f"auth.users (user {u.username!r}).role: {exc.message}") from None
            if u.role_omitted:
                log.info("user %s has no role in the config: admin (as in the original); "
                         "set role: operator, viewer or auditor to grant less", u.username)
        async with self.db.session.begin() as s:
            existing = {u.username: u for u in (await s.scalars(select(User))).all()}
            for name, cfg in wanted.items():
                row = existing.get(name)
                if row is None:
                    s.add(User(username=name, role=cfg.role, password_hash=cfg.password_hash,
                               source="config", groups=list(cfg.groups)))
                    continue
                if row.password_hash != cfg.password_hash:
                    # a changed password ends every session of that user
                    await s.execute(
                        update(ApiToken)
                        .where(ApiToken.user_id == row.id, ApiToken.kind == "session")
                        .values(revoked_at=utcnow())
                    )
                if (row.role, list(row.groups or [])) != (cfg.role, list(cfg.groups)):
                    log.info("user %s: role %s over %s", name, cfg.role,
                             ", ".join(cfg.groups) or "every group")
                row.password_hash, row.role, row.disabled = cfg.password_hash, cfg.role, False
                row.groups = list(cfg.groups)
            for name, row in existing.items():
                if row.source == "config" and name not in wanted and not row.disabled:
                    row.disabled = True
                    log.info("user %s is no longer in the config: disabled", name)

    async def login(self, username: str, password: str, client: str) -> str:
        """A new session token, or AuthError / Throttled. Failures are throttled per user and client, and per
        client; a throttled login is refused before the database or bcrypt is touched."""
        for who, wait in ((None, self.throttle.address_retry_after(client)),
                          (username, self.throttle.retry_after(username, client))):
            if wait > 0:
                # each refusal of a flood is not a record: the first one since the throttle closed is
                await self._throttled(who, client, wait)
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == username))
        try:
            ok = await self.passwords.verify(password, user.password_hash if user else DUMMY_HASH)
        except Throttled:
            if time.monotonic() - self._busy_warned > 60:  # once a minute, not once a refusal
                self._busy_warned = time.monotonic()
                log.warning("logins refused: more than %d are waiting for their password check (the last from %s)",
                            self.passwords.queue, client)
            raise
        if not ok or user is None or user.disabled:
            self.throttle.failed(username, client)
            log.info("failed login for user %r from %s", username, client)
            await self._audit("auth.login", username, client, "failed",
                              {"why": "disabled" if ok and user is not None else "wrong username or password"})
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
        await self._audit("auth.login", username, client, "ok", {"session": token[:10]})
        return token

    async def _throttled(self, username: str | None, client: str, wait: float) -> NoReturn:
        who = f"from {client}" if username is None else f"for {username!r} from {client}"
        if self.throttle.first_refusal(username, client):
            log.warning("logins %s refused for %ds: too many failures", who, int(wait) + 1)
            await self._audit("auth.login", username or "", client, "throttled", {
                "why": f"too many failed logins {'from this address' if username is None else 'for this user'}; "
                       "further refusals until the window ends are not recorded",
                "retry_after": str(int(wait) + 1)})
        raise Throttled(f"too many failed logins {who}; try again in {int(wait) + 1}s", retry_after=wait)

    async def _audit(self, action: str, actor: str, client: str, result: str, detail: dict[str, str]) -> None:
        if self.audit is not None:
            await self.audit.record(action, actor=actor[:128], client=client, result=result, detail=detail,
                                    source="api")

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
        _check_live(tok, user, now)
        if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
            async with self.db.session.begin() as s:
                await s.execute(update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now))
        try:
            access = self.roles.access(user.username, user.role, tuple(user.groups or ()))
        except ConfigError:  # a role removed from the config since the row was written
            access = Access.none(user.username)
        return Principal(user.id, user.username, user.role, tok.id, tok.kind, access)

    async def still_valid(self, token_id: int) -> None:
        """AuthError when the token a connection was opened with has since been revoked or logged out,
        has expired, or its user was disabled (long-lived connections ask now and then)."""
        async with self.db.session() as s:
            row = (await s.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                                   .where(ApiToken.id == token_id))).first()
        if row is None:
            raise AuthError("this token no longer exists; log in again")
        _check_live(row[0], row[1], utcnow())

    async def logout(self, principal: Principal) -> None:
        await self._revoke(principal.token_id)

    async def logout_everywhere(self, principal: Principal) -> int:
        """End every login session of the caller's user (API tokens stay); returns how many."""
        async with self.db.session.begin() as s:
            res = await s.execute(
                update(ApiToken)
                .where(ApiToken.user_id == principal.user_id, ApiToken.kind == "session",
                       ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    async def rights_report(self, *, max_admins: int, unused_days: int) -> dict[str, Any]:
        """The permission-matrix report (see ``auth.report``) from the users table and the audit trail."""
        now = utcnow()
        since = now - timedelta(days=unused_days)
        implicit = {u.username for u in self.settings.users if u.role_omitted}
        async with self.db.session() as s:
            rows = (await s.scalars(select(User).order_by(User.username))).all()
        users = [UserRow(r.username, r.role, tuple(r.groups or ()), r.disabled, r.username in implicit)
                 for r in rows]
        last_use = await self.audit.last_use(since) if self.audit else {}
        last_login = await self.audit.last_action("auth.login", since) if self.audit else {}
        return report.build(users, self.roles, last_use=last_use, last_login=last_login, now=now,
                            max_admins=max_admins, unused_days=unused_days)

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


def _check_live(tok: ApiToken, user: User, now: datetime) -> None:
    if tok.revoked_at is not None:
        raise AuthError("this token was revoked or its session logged out; log in again")
    if tok.expires_at is not None and tok.expires_at <= now:
        raise AuthError("this session expired; log in again")
    if user.disabled:
        raise AuthError(f"user {user.username!r} is disabled")
