"""Users, login sessions and API tokens, backed by the database.

Config users are the source of truth for their accounts: every start re-syncs their hash, role and
groups. A user removed from the file, or marked ``disabled: true``, is disabled: every session and API
token they hold is revoked, and the pending approvals made in their name are cancelled; what acts in
their name later (schedules, approvals) asks :class:`~smallyi.auth.accounts.Accounts` and stops. A changed
password revokes their sessions and API tokens (``keep_tokens_on_password_change`` keeps the tokens).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from smallyi.audit.trail import AuditTrail
from smallyi.auth import report
from smallyi.auth.accounts import Accounts
from smallyi.auth.passwords import DUMMY_HASH, PasswordChecker
from smallyi.auth.rbac import Access, RoleBook
from smallyi.auth.report import UserRow
from smallyi.auth.throttle import LoginThrottle
from smallyi.auth.tokens import API_PREFIX, SESSION_PREFIX, digest, new_token
from smallyi.config import AuthSettings
from smallyi.errors import AuthError, ConfigError, InputError, NotFound, Throttled
from smallyi.storage.db import Database
from smallyi.storage.models import ApiToken, User, utcnow
from smallyi.storage.rows import affected

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
    #: whose token it is (filled where a list spans users)
    username: str = ""


@dataclass(frozen=True, slots=True)
class Revoked:
    """What ending a user's logins revoked: session and API token counts."""

    sessions: int = 0
    tokens: int = 0


class Withdraw(Protocol):
    """Cancels what waits on a decision in the name of a person who can no longer act, and names it
    (:class:`smallyi.approvals.withdraw.Withdrawal`; approvals sit above ``auth``)."""

    async def __call__(self, accounts: Accounts, person: str, reason: str) -> list[str]: ...


class AuthService:
    def __init__(self, db: Database, settings: AuthSettings, *, withdraw: Withdraw, roles: RoleBook | None = None,
                 audit: AuditTrail | None = None) -> None:
        self.db = db
        self.withdraw = withdraw
        self.settings = settings
        self.roles = roles or RoleBook.build({})
        self.audit = audit
        self.throttle = LoginThrottle(max_failures=settings.login_max_failures, window=settings.login_window,
                                      max_address_failures=settings.address_max_failures)
        self.accounts = Accounts(db, self.roles, configured=[u.username for u in settings.users],
                                 disabled_in_config=[u.username for u in settings.users if u.disabled])
        self.passwords = PasswordChecker()
        self._busy_warned = -60.0

    def close(self) -> None:
        """Stop the password-check threads."""
        self.passwords.close()

    def reconfigure(self, settings: AuthSettings, roles: RoleBook) -> None:
        """A reloaded config's users, roles and login limits, for the requests from now on (the users table
        follows with :meth:`sync_config_users`; failed logins counted so far still count)."""
        self.settings = settings
        self.roles = roles
        self.throttle.reconfigure(max_failures=settings.login_max_failures, window=settings.login_window,
                                  max_address_failures=settings.address_max_failures)
        self.accounts.roles = roles
        self.accounts.configured = frozenset(u.username for u in settings.users)
        self.accounts.disabled_in_config = frozenset(u.username for u in settings.users if u.disabled)

    async def sync_config_users(self) -> None:
        """Make the users table match the config's users (hash, role, groups, disabled).

        A user removed from the file or marked ``disabled`` loses every session and API token and the
        pending approvals made in their name; one who comes back starts afresh (nothing revived). A changed
        password revokes the user's sessions and API tokens. Each of these is audited (actor ``config``).
        """
        wanted = {u.username: u for u in self.settings.users}
        for u in wanted.values():
            try:
                self.roles.perms(u.role)
            except ConfigError as exc:
                raise ConfigError(f"auth.users (user {u.username!r}).role: {exc.message}") from None
            if u.role_omitted:
                log.info("user %s has no role in the config: admin (as in the original); "
                         "set role: operator, viewer or auditor to grant less", u.username)
        events: list[tuple[str, str, dict[str, Any]]] = []  # (action, user, detail), audited once committed
        gone: list[tuple[str, str]] = []  # (user, why) disabled now: their pending approvals are cancelled
        async with self.db.session.begin() as s:
            existing = {u.username: u for u in (await s.scalars(select(User))).all()}
            for name, cfg in wanted.items():
                row = existing.get(name)
                if row is None:
                    s.add(User(username=name, role=cfg.role, password_hash=cfg.password_hash,
                               source="config", groups=list(cfg.groups), disabled=cfg.disabled))
                    continue
                if row.password_hash != cfg.password_hash:
                    kinds = ("session",) if cfg.keep_tokens_on_password_change else ("session", "api")
                    done = await _revoke_all(s, row.id, kinds)
                    log.info("user %s: password changed; revoked %d session(s) and %d API token(s)",
                             name, done.sessions, done.tokens)
                    events.append(("auth.password_changed", name, {
                        "ended_sessions": done.sessions, "revoked_tokens": done.tokens,
                        "kept_tokens": cfg.keep_tokens_on_password_change}))
                if (row.role, list(row.groups or [])) != (cfg.role, list(cfg.groups)):
                    log.info("user %s: role %s over %s", name, cfg.role,
                             ", ".join(cfg.groups) or "every group")
                if row.disabled != cfg.disabled:
                    # either way every login from before ends: a returning user's old tokens are not revived
                    done = await _revoke_all(s, row.id, ("session", "api"))
                    why = "marked disabled in the config" if cfg.disabled else "enabled again in the config"
                    events.append(("auth.user_disabled" if cfg.disabled else "auth.user_enabled", name,
                                   {"why": why, "ended_sessions": done.sessions, "revoked_tokens": done.tokens}))
                    log.info("user %s is %s", name, why)
                    if cfg.disabled:
                        gone.append((name, why))
                row.password_hash, row.role, row.disabled = cfg.password_hash, cfg.role, cfg.disabled
                row.groups = list(cfg.groups)
            for name, row in existing.items():
                if row.source == "config" and name not in wanted and not row.disabled:
                    row.disabled = True
                    done = await _revoke_all(s, row.id, ("session", "api"))
                    why = "removed from the config"
                    events.append(("auth.user_disabled", name, {"why": why, "ended_sessions": done.sessions,
                                                                "revoked_tokens": done.tokens}))
                    gone.append((name, why))
                    log.info("user %s is no longer in the config: disabled; revoked %d session(s) and %d API "
                             "token(s)", name, done.sessions, done.tokens)
        for name, why in gone:
            cancelled = await self.withdraw(self.accounts, name, f"user {name!r} was {why}")
            for action, who, detail in events:
                if who == name and action == "auth.user_disabled":
                    detail["cancelled_approvals"] = cancelled
        for action, name, detail in events:
            if self.audit is not None:
                await self.audit.record(action, actor="config", target=f"user {name}", detail=detail)

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

    async def logout_everywhere(self, principal: Principal, *, keep_tokens: bool = False) -> Revoked:
        """End every login session of the caller's user and, unless ``keep_tokens``, every API token."""
        async with self.db.session.begin() as s:
            return await _revoke_all(s, principal.user_id, ("session",) if keep_tokens else ("session", "api"))

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

    async def all_tokens(self, *, user: str | None = None, kind: str | None = None, limit: int = 50,
                         offset: int = 0) -> tuple[list[TokenInfo], int]:
        """Every user's live tokens (API tokens and login sessions), newest first: (one page, how many)."""
        q = (select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
             .where(ApiToken.revoked_at.is_(None), ApiToken.expires_at.is_(None) | (ApiToken.expires_at > utcnow())))
        if user:
            q = q.where(User.username == user)
        if kind:
            q = q.where(ApiToken.kind == kind)
        async with self.db.session() as s:
            total = await s.scalar(select(func.count()).select_from(q.subquery()))
            rows = (await s.execute(q.order_by(ApiToken.id.desc()).limit(limit).offset(offset))).all()
        return [_info(t, username) for t, username in rows], int(total or 0)

    async def revoke_any(self, token_id: int) -> TokenInfo:
        """Revoke any user's token or session (an admin's action); NotFound unless it is live."""
        async with self.db.session.begin() as s:
            row = (await s.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                                   .where(ApiToken.id == token_id))).first()
            if row is None or row[0].revoked_at is not None:
                raise NotFound(f"token {token_id} is not a live token; list them with `small-yi tokens list` "
                               "or GET /api/v1/security/tokens")
            await s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
        return _info(row[0], row[1])

    async def _revoke(self, token_id: int) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))


async def _revoke_all(s: AsyncSession, user_id: int, kinds: tuple[str, ...]) -> Revoked:
    """Revoke a user's live tokens of ``kinds`` in session ``s``; returns how many of each."""
    counts = dict.fromkeys(kinds, 0)
    now = utcnow()
    for kind in kinds:
        res = await s.execute(update(ApiToken).where(
            ApiToken.user_id == user_id, ApiToken.kind == kind, ApiToken.revoked_at.is_(None),
            ApiToken.expires_at.is_(None) | (ApiToken.expires_at > now)).values(revoked_at=now))
        counts[kind] = affected(res)
    return Revoked(sessions=counts.get("session", 0), tokens=counts.get("api", 0))


def _info(r: ApiToken, username: str = "") -> TokenInfo:
    return TokenInfo(r.id, r.name, r.prefix, r.kind, r.created_at, r.expires_at, r.last_used_at, username)


def _check_live(tok: ApiToken, user: User, now: datetime) -> None:
    if user.disabled:  # first: a disabled user's tokens are revoked too, and this says why
        raise AuthError(f"user {user.username!r} is disabled")
    if tok.revoked_at is not None:
        raise AuthError("this token was revoked or its session logged out; log in again")
    if tok.expires_at is not None and tok.expires_at <= now:
        raise AuthError("this session expired; log in again")
