"""``small-yi audit``: verify the hash chain, search, export, the permission-matrix report, purge.

These read the configured database directly (like ``small-yi run``), so whoever runs them can read
the config and the database anyway; every run of ``purge`` and ``export`` is itself audited.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    console,
    esc,
    in_runtime,
    page_note,
    plain,
    print_json,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app

if TYPE_CHECKING:
    from smallyi.runtime import Runtime

audit_app = typer_app(help="The audit trail: verify, search, export, rbac-report, purge.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command()
def verify(config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Check every record's hash, link and MAC against the external anchor, and every task and terminal
    session against its record; name each thing edited, deleted, forged or unrecorded. Exit 1 if any."""
    rep = in_runtime(settings(config), lambda rt: rt.audit.verify())
    if output is OutputFormat.json:
        print_json(rep.to_dict())
        raise typer.Exit(0 if rep.ok else 1)
    a = rep.anchor
    if a is not None:
        state = "matches" if rep.anchor_matched else "does NOT match"
        console.print(f"anchor {rep.anchor_file}: record {a.seq} hash {a.hash} (written {a.at}) {state}",
                      soft_wrap=True)
    elif rep.anchor_file:
        console.print(f"anchor {rep.anchor_file}: none", soft_wrap=True)
    console.print(f"cross-check: {rep.tasks_checked} tasks and {rep.sessions_checked} terminal sessions against "
                  f"their records" + (f" ({rep.rows_before_trail} older than the trail not checked)"
                                      if rep.rows_before_trail else ""))
    if rep.ok:
        console.print(f"audit trail intact: {rep.checked} records checked, head {rep.last_id} hash {rep.last_hash}")
        console.print(f"  {rep.authenticated} records carry a valid MAC under the audit key")
        if rep.legacy:
            console.print(f"  {rep.legacy} records (ids below {rep.mac_from}) were written before MACs existed: "
                          "they are covered by the hash chain, and through it by the first MAC'd record after them")
        console.print("keep the anchor somewhere else too (audit.anchor_syslog, audit.anchor_webhook, a ticket): a "
                      "later verify against a copy that the trail no longer reaches shows a rewrite")
    else:
        for f in rep.findings:
            console.print(f"[red]TAMPERED[/] {esc(f.message)}", markup=True, soft_wrap=True)
        console.print(f"{len(rep.findings)} problem(s) in {rep.checked} records checked")
    raise typer.Exit(0 if rep.ok else 1)


def _filter(actor: str | None, action: str | None, target: str | None, result: str | None, since: str | None,
            until: str | None) -> Any:
    from smallyi.audit.trail import AuditFilter
    from smallyi.tasks.queries import parse_window

    since_at, until_at = parse_window(since, until, flag="--")
    return AuditFilter(actor=actor, action=action, target=target, result=result, since=since_at, until=until_at)


ActorOpt = Annotated[str | None, typer.Option(help="who (a user name, or cli:<os user>)")]
ActionOpt = Annotated[str | None, typer.Option(help="action prefix: auth.login, task., policy.deny ...")]
TargetOpt = Annotated[str | None, typer.Option(help="part of the target (a host, a task, a path)")]
ResultOpt = Annotated[str | None, typer.Option(help="ok, failed, denied, pending ...")]
SinceOpt = Annotated[str | None, typer.Option(help="1h (ago) or 2026-11-20T10:00:00Z")]
UntilOpt = Annotated[str | None, typer.Option(help="as --since")]


@audit_app.command()
def search(
    actor: ActorOpt = None, action: ActionOpt = None, target: TargetOpt = None, result: ResultOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
    offset: Annotated[int, typer.Option(min=0, help="skip this many records (the next page)")] = 0,
    config: ConfigOpt = None, output: OutputOpt = OutputFormat.text,
) -> None:
    """Records, newest first, filtered by who, what, target, result and time: one page (--limit, --offset),
    and how many there are (every one: `audit export`)."""
    rows, total = in_runtime(settings(config), lambda rt: rt.audit.search(
        _filter(actor, action, target, result, since, until), limit=limit, offset=offset))
    if output is OutputFormat.json:
        print_json({"items": [e.to_dict() for e in rows], "total": total})
        return
    from rich.table import Table

    t = Table("id", "at", "who", "from", "action", "target", "result")
    for e in rows:
        t.add_row(str(e.id), when(e.at), plain(e.actor), plain(e.client), plain(e.action),
                  plain(e.target[:60]), plain(e.result))
    console.print(t)
    console.print(page_note(len(rows), total, offset, "records"))


@audit_app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="file to write (default: standard output)")] = None,
    actor: ActorOpt = None, action: ActionOpt = None, target: TargetOpt = None, result: ResultOpt = None,
    since: SinceOpt = None, until: UntilOpt = None, config: ConfigOpt = None,
) -> None:
    """Every matching record, oldest first, as JSON lines or CSV (hashes included)."""
    from smallyi.audit.export import csv_rows, jsonl
    from smallyi.cli.common import fail

    if format not in ("jsonl", "csv"):
        fail(f"--format: {format!r} is not jsonl or csv")

    async def go(rt: Runtime) -> int:
        f = _filter(actor, action, target, result, since, until)
        n = 0
        if out:
            from smallyi.storage import private  # the trail's commands and addresses: 0600 from creation

            fh = private.open_new(out, "w", encoding="utf-8", newline="")
        else:
            fh = sys.stdout
        try:
            if format == "csv":
                fh.write(next(csv_rows([])))
            async for e in rt.audit.stream(f):
                fh.write("".join(jsonl([e]) if format == "jsonl" else list(csv_rows([e]))[1:]))
                n += 1
            await rt.audit.record("audit.export", actor=whoami(), perm="audit.export",
                                  detail={"records": n, "format": format})
            return n
        finally:
            if out:
                fh.close()

    n = in_runtime(settings(config), go)
    if out:
        console.print(plain(f"wrote {n} records to {out}"))


@audit_app.command(name="rbac-report")
def rbac_report(config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Who can do what on which groups, and findings against least privilege."""
    s = settings(config)
    rep = in_runtime(s, lambda rt: rt.auth.rights_report(max_admins=s.audit.max_admins,
                                                         unused_days=s.audit.unused_days))
    if output is OutputFormat.json:
        print_json(rep)
        return
    from rich.table import Table

    t = Table("user", "role", "groups", "permissions", "last login")
    for row in rep["matrix"]:
        t.add_row(plain(row["user"]), plain(row["role"]), plain(",".join(row["groups"])),
                  plain(" ".join(p["name"] for p in row["permissions"])), plain(when(row["last_login"]) or "never"))
    console.print(t)
    if not rep["findings"]:
        console.print("no findings against least privilege")
    for f in rep["findings"]:
        console.print(f"[yellow]{esc(f['kind'])}[/]: {esc(f['message'])}", markup=True, soft_wrap=True)


@audit_app.command()
def purge(
    older_than_days: Annotated[int | None, typer.Option(help="default: audit.retention_days (180)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Delete records older than the retention now (the server also does it on schedule); audited."""
    s = settings(config)
    days = older_than_days or s.audit.retention_days
    n = in_runtime(s, lambda rt: rt.audit.purge(older_than_days=days, actor=whoami()))
    console.print(f"purged {n} records older than {days} days (the purge itself is recorded)")
