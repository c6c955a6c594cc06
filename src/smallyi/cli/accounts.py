"""``small-yi tokens`` and ``small-yi users``: every user's tokens and sessions; the config's users applied now.

``tokens`` works in-process on the configured database (with the local CLI's full rights, audited as
``cli:<login>``) or, with ``--server``, through ``/api/v1/security/tokens`` (which needs ``tokens.manage``).
``users sync`` applies the config's users to the database at once, as a restart does: a running server
reads accounts from the database at every request and every schedule slot, so it follows without a restart.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    ServerOpt,
    TokenOpt,
    console,
    print_json,
    run,
    settings,
    when,
    whoami,
)

if TYPE_CHECKING:
    from smallyi.config import Settings

tokens_app = typer.Typer(help="Every user's API tokens and login sessions: list, revoke (admins).",
                         no_args_is_help=True)
users_app = typer.Typer(help="The config's users in the database: list, sync now.", no_args_is_help=True)


class Kind(enum.StrEnum):
    api = "api"
    session = "session"


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(users_app, name="users")


async def _local(s: Settings, fn: Any) -> Any:
    """``fn(auth, audit)`` on the configured database, without the rest of a runtime."""
    from smallyi.approvals.withdraw import Withdrawal
    from smallyi.audit.chain import AuditKeys
    from smallyi.audit.trail import AuditTrail
    from smallyi.auth.rbac import RoleBook
    from smallyi.auth.service import AuthService
    from smallyi.secrets import keyring
    from smallyi.storage.db import open_database

    keys = AuditKeys(*keyring.load_audit_keys(s.audit)[:2])
    db = await open_database(s)
    try:
        audit = AuditTrail(db, keys=keys, source="cli")
        roles = RoleBook.build({name: r.permissions for name, r in s.roles.items()})
        return await fn(AuthService(db, s.auth, roles=roles, audit=audit, withdraw=Withdrawal(db)), audit)
    finally:
        await db.close()


def _row(t: Any) -> dict[str, Any]:
    from smallyi.timestamps import iso

    return {"id": t.id, "user": t.username, "kind": t.kind, "name": t.name, "prefix": t.prefix,
            "created_at": iso(t.created_at), "expires_at": iso(t.expires_at), "last_used_at": iso(t.last_used_at)}


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", "-u", help="only this user's")] = None,
    kind: Annotated[Kind | None, typer.Option(help="api (tokens) or session (logins); default both")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many, newest first")] = 100,
    output: OutputOpt = OutputFormat.text, config: ConfigOpt = None, server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Live API tokens and login sessions of every user (or one): id, user, kind, name, prefix, last use."""
    params = {k: v for k, v in {"user": user, "kind": kind.value if kind else None, "limit": limit}.items() if v}

    async def go() -> dict[str, Any]:
        if server:
            from smallyi.cli.client import Client

            async with Client(server, token) as c:
                return dict(await c.call("GET", "/api/v1/security/tokens", params=params))

        async def local(auth: Any, _audit: Any) -> dict[str, Any]:
            items, total = await auth.all_tokens(user=user, kind=params.get("kind"), limit=limit)
            return {"items": [_row(t) for t in items], "total": total}

        return dict(await _local(settings(config), local))

    data = run(go)
    if output is OutputFormat.json:
        print_json(data)
        return
    for t in data["items"]:
        used = when(t["last_used_at"]) or "never"
        console.print(f"{t['id']:>6}  {t['user']:<16} {t['kind']:<8} {t['prefix']}…  {t['name']:<20} "
                      f"last used {used}", markup=False, soft_wrap=True)
    console.print(f"{len(data['items'])} of {data['total']} live token(s) and session(s)")


@tokens_app.command("revoke")
def tokens_revoke(
    ids: Annotated[list[int], typer.Argument(help="token ids (from `small-yi tokens list`)", show_default=False)],
    output: OutputOpt = OutputFormat.text, config: ConfigOpt = None, server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Revoke tokens or sessions of any user now; their open WebSockets close within auth.session_recheck.
    Audited (auth.token_revoke)."""
    async def go() -> list[dict[str, Any]]:
        if server:
            from smallyi.cli.client import Client

            async with Client(server, token) as c:
                return [await c.call("DELETE", f"/api/v1/security/tokens/{i}") for i in ids]

        async def local(auth: Any, audit: Any) -> list[dict[str, Any]]:
            done = []
            for i in ids:
                t = await auth.revoke_any(i)
                await audit.record("auth.token_revoke", actor=whoami(), target=f"user {t.username}",
                                   perm="tokens.manage", detail={"token": t.id, "kind": t.kind, "name": t.name,
                                                                 "prefix": t.prefix})
                done.append(_row(t))
            return done

        return list(await _local(settings(config), local))

    done = run(go)
    if output is OutputFormat.json:
        print_json({"revoked": done})
        return
    for t in done:
        console.print(f"revoked {t['kind']} {t['id']} of {t['user']} ({t['prefix']}…, {t['name']})", markup=False)


@users_app.command("sync")
def users_sync(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """Apply the config's users to the database now (as a restart does): removed or disabled users lose their
    sessions, tokens and pending approvals, changed passwords revoke logins; a running server follows at once."""
    async def local(auth: Any, _audit: Any) -> list[dict[str, Any]]:
        await auth.sync_config_users()
        return await _users(auth)

    items = run(lambda: _local(settings(config), local))
    _print_users(items, output)


@users_app.command("list")
def users_list(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """Users in the database (as last synced from the config): role, groups, disabled."""
    async def local(auth: Any, _audit: Any) -> list[dict[str, Any]]:
        return await _users(auth)

    _print_users(run(lambda: _local(settings(config), local)), output)


async def _users(auth: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from smallyi.storage.models import User

    async with auth.db.session() as s:
        rows = (await s.scalars(select(User).order_by(User.username))).all()
    return [{"username": u.username, "role": u.role, "groups": list(u.groups or []), "disabled": u.disabled}
            for u in rows]


def _print_users(items: list[dict[str, Any]], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json({"items": items, "total": len(items)})
        return
    for u in items:
        state = "  disabled" if u["disabled"] else ""
        console.print(f"{u['username']:<20} {u['role']:<10} {', '.join(u['groups']) or 'every group'}{state}",
                      markup=False)
