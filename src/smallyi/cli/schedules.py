"""``small-yi schedules``: add, list, show, pause, resume and remove cron schedules; see their fires.

Like ``hosts``, these work in-process on the configured database; a running server picks changes
up within a few seconds. Schedules fire only in ``small-yi serve`` (one fire per slot across replicas).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    console,
    esc,
    fail,
    plain,
    print_json,
    run,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app
from smallyi.cli.target import GroupOpt, HostsOpt, LabelOpt

if TYPE_CHECKING:
    from smallyi.schedules.store import ScheduleStore

schedules_app = typer_app(help="Cron schedules of commands and SOPs.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="the schedule's name", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")


def _with_store(config: str | None, fn: Any) -> None:
    s = settings(config)

    async def go() -> None:
        from smallyi.schedules.store import ScheduleStore
        from smallyi.storage.db import open_database

        db = await open_database(s)
        try:
            await fn(ScheduleStore(db))
        finally:
            await db.close()

    run(go)


def _show(row: Any, suspended: str | None = None) -> dict[str, Any]:
    from smallyi.schedules.store import next_slot, schedule_dict

    return schedule_dict(row, next_slot=next_slot(row), suspended=suspended)


async def _suspended(store: ScheduleStore, config: str | None, row: Any) -> str | None:
    """Why the schedule's owner cannot act now (its slots then run nothing), or None."""
    from smallyi.auth.accounts import Accounts
    from smallyi.auth.rbac import RoleBook

    s = settings(config)
    accounts = Accounts(store.db, RoleBook.build({n: r.permissions for n, r in s.roles.items()}),
                        configured=[u.username for u in s.auth.users],
                        disabled_in_config=[u.username for u in s.auth.users if u.disabled])
    owner = await accounts.standing(row.created_by)
    return None if owner.ok else owner.problem("owner")


@schedules_app.command("add")
def add_cmd(
    name: NameArg,
    cron: Annotated[str, typer.Option("--cron", help='5 fields ("*/5 * * * *"), "@every 10m" or "@daily"')],
    cmd: Annotated[str | None, typer.Option("--cmd", help="the command to run (with a target)")] = None,
    sop: Annotated[str | None, typer.Option("--sop", help="the stored SOP to run instead")] = None,
    group: GroupOpt = None, hosts: HostsOpt = None, label: LabelOpt = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone (default: schedules.timezone)")] = None,
    timeout: Annotated[str | None, typer.Option(help="command timeout, Go style: 30s, 5m")] = None,
    missed: Annotated[str, typer.Option(help="slots missed while no scheduler ran: skip | run_once")] = "skip",
    overlap: Annotated[str, typer.Option(help="while the previous run still runs: skip | allow")] = "skip",
    inject_env: Annotated[str, typer.Option("--inject-env", help="environment for a SOP")] = "",
    notify: Annotated[list[str] | None, typer.Option("--notify", help="channel to tell; repeat for more")] = None,
    notify_on: Annotated[list[str] | None, typer.Option("--notify-on", help="success | failure | finish")] = None,
    description: Annotated[str, typer.Option(help="what it is for")] = "",
    output: OutputOpt = OutputFormat.text, config: ConfigOpt = None,
) -> None:
    """Add a schedule: a command on a target, or a stored SOP; it first fires at its next slot."""
    from smallyi.cli.target import selector
    from smallyi.durations import parse_timeout
    from smallyi.errors import SmallYiError
    from smallyi.policy import command_text

    if (cmd is None) == (sop is None):
        fail("give --cmd (with --group/--hosts/--label) or --sop NAME")
    try:
        target = selector(group, hosts, label).to_dict() if (group or hosts or label) else {}
        seconds = parse_timeout(timeout, field="--timeout") if timeout else None
        if cmd is not None:
            command_text.check(cmd, field="--cmd")
    except SmallYiError as exc:
        fail(exc.message)
    values: dict[str, Any] = {
        "name": name, "cron": cron, "timezone": timezone or settings(config).schedules.timezone,
        "kind": "command" if cmd is not None else "sop", "command": cmd or "", "target": target,
        "timeout": seconds, "sop_name": sop or "", "environment": inject_env, "missed": missed,
        "overlap": overlap, "description": description,
        "notify": {"channels": notify, "on": notify_on or ["failure"]} if notify else {},
    }

    async def go(store: ScheduleStore) -> None:
        row = await store.create(values, by=whoami())
        _print(_show(row), output)

    _with_store(config, go)


def _print(d: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(d)
        return
    what = d["command"] if d["kind"] == "command" else f"SOP {d['sop_name']}"
    state = "" if d["enabled"] else " [yellow](paused)[/]"
    console.print(f"{esc(d['name'])}{state}: {esc(d['cron'])} ({esc(d['timezone'])}) → {esc(what)}", soft_wrap=True,
                  markup=True)
    console.print(plain(f"  next: {when(d['next_slot']) or '-'}   missed: {d['missed']}   overlap: {d['overlap']}"
                        f"   owner: {d['owner']}"), soft_wrap=True)
    if d.get("suspended"):
        console.print(plain(f"  suspended: {d['suspended']}"), style="yellow", soft_wrap=True)


@schedules_app.command("list")
def list_cmd(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """Every schedule with its next slot."""
    async def go(store: ScheduleStore) -> None:
        items = [_show(r, await _suspended(store, config, r)) for r in await store.all()]
        if output is OutputFormat.json:
            print_json({"items": items, "total": len(items)})
            return
        for d in items:
            _print(d, output)

    _with_store(config, go)


@schedules_app.command("show")
def show_cmd(name: NameArg, limit: Annotated[int, typer.Option(min=1, max=1000, help="fires shown")] = 20,
             output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """A schedule and its latest fires (each slot: fired, skipped for overlap, or missed)."""
    from smallyi.schedules.store import fire_dict

    async def go(store: ScheduleStore) -> None:
        row = await store.get(name)
        fires, total = await store.fires(row.id, limit=limit)
        items = [fire_dict(f) for f in fires]
        shown = _show(row, await _suspended(store, config, row))
        if output is OutputFormat.json:
            print_json({**shown, "fires": items, "fires_total": total})
            return
        _print(shown, output)
        for f in items:
            ref = f"task {f['task_id']}" if f["task_id"] else f"run {f['run_id']}" if f["run_id"] else ""
            console.print(plain(f"  {when(f['slot'])}  {f['status']:<8} {ref}  {f['reason'] or ''}"),
                          soft_wrap=True)
        if total > len(items):
            console.print(f"  showing the latest {len(items)} of {total} fires; more with --limit (up to 1000)")

    _with_store(config, go)


def _toggle(enabled: bool) -> Any:
    def cmd(name: NameArg, config: ConfigOpt = None) -> None:
        async def go(store: ScheduleStore) -> None:
            row = await store.update(name, {"enabled": enabled}, by=whoami())
            console.print(plain(f"{row.name}: {'resumed' if enabled else 'paused'}"))

        _with_store(config, go)

    cmd.__doc__ = "Resume a paused schedule (missed slots are counted from now)." if enabled else \
        "Pause a schedule (it fires no more until resumed)."
    return cmd


schedules_app.command("pause")(_toggle(False))
schedules_app.command("resume")(_toggle(True))


@schedules_app.command("rm")
def rm_cmd(name: NameArg, config: ConfigOpt = None) -> None:
    """Remove a schedule and its fire history."""
    async def go(store: ScheduleStore) -> None:
        await store.delete(name)
        console.print(plain(f"removed schedule {name}"))

    _with_store(config, go)
