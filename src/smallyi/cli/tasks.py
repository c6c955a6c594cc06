"""``small-yi tasks list|show|cancel`` and ``small-yi results``: the archive from the command line.

Reads the configured database directly, or a running server with ``--server``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
)

LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="at most this many rows")]
SinceOpt = Annotated[str | None, typer.Option(help="since: a duration ago (1h) or a timestamp")]
UntilOpt = Annotated[str | None, typer.Option(help="until: a duration ago or a timestamp")]


def register(app: typer.Typer) -> None:
    tasks_app = typer.Typer(help="Tasks in the archive: list, show, cancel.", no_args_is_help=True)
    app.add_typer(tasks_app, name="tasks")

    @tasks_app.command("list")
    def list_(
        status: Annotated[str | None, typer.Option(help="queued, running, success, failed, cancelled, interrupted")] = None,
        since: SinceOpt = None, until: UntilOpt = None,
        command: Annotated[str | None, typer.Option(help="command text contains")] = None,
        user: Annotated[str | None, typer.Option("--user", help="started by")] = None,
        limit: LimitOpt = 20, output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Tasks, newest first."""
        params = {"status": status, "since": since, "until": until, "command": command,
                  "created_by": user, "limit": limit}
        data = run(lambda: _get(config, server, token, "/api/v1/tasks", params))
        if output is OutputFormat.json:
            return print_json(data)
        table = Table(box=None, header_style="bold")
        for col in ("id", "status", "hosts", "counts", "created", "by", "command"):
            table.add_column(col)
        for t in data["items"]:
            counts = " ".join(f"{k}:{v}" for k, v in sorted(t["counts"].items()))
            table.add_row(str(t["id"]), _status(t, short=True), str(t["host_count"]), counts,
                          str(t["created_at"])[:19], t["created_by"], t["command"][:60])
        console.print(table)
        console.print(f"{len(data['items'])} of {data['total']} tasks")

    @tasks_app.command()
    def show(
        task_id: Annotated[int, typer.Argument(help="task id")],
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """A task with every host's result and archived output."""
        data = run(lambda: _show(config, server, token, task_id))
        if output is OutputFormat.json:
            return print_json(data)
        t = data["task"]
        console.print(f"task {t['id']} [bold]{_status(t)}[/]: {t['command']!r} on {t['target']} "
                      f"by {t['created_by']} at {str(t['created_at'])[:19]}")
        for r in data["results"]:
            code = "" if r["exit_code"] is None else f" exit {r['exit_code']}"
            console.print(f"[bold]== {r['host']}[/] {r['status']}{code} {r['reason']}")
            for line in (r["stdout"] or "").splitlines():
                console.out(f"[{r['host']}] {line}", highlight=False)
            for line in (r["stderr"] or "").splitlines():
                console.out(f"[{r['host']}]! {line}", highlight=False)
            if r["truncated"]:
                console.print(f"  (output cut: {r['stdout_cut'] + r['stderr_cut']} bytes not archived)")

    @tasks_app.command()
    def cancel(
        task_id: Annotated[int, typer.Argument(help="task id")],
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Cancel a queued or running task: remote commands stop, unfinished hosts end cancelled."""
        what = run(lambda: _cancel(config, server, token, task_id))
        typer.echo(f"task {task_id}: {what}")

    @app.command()
    def results(
        host: Annotated[str | None, typer.Option(help="host name")] = None,
        status: Annotated[str | None, typer.Option(help="success, failed, timeout, unreachable, ...")] = None,
        since: SinceOpt = None, until: UntilOpt = None,
        task: Annotated[int | None, typer.Option(help="task id")] = None,
        limit: LimitOpt = 50, output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Per-host results across tasks, newest first, filtered by host, status, time and task."""
        params = {"host": host, "status": status, "since": since, "until": until, "task": task, "limit": limit}
        data = run(lambda: _get(config, server, token, "/api/v1/results", params))
        if output is OutputFormat.json:
            return print_json(data)
        table = Table(box=None, header_style="bold")
        for col in ("task", "host", "status", "exit", "started", "duration", "reason / first line"):
            table.add_column(col)
        for r in data["items"]:
            first = r["reason"] or (r["stdout"] or "").split("\n", 1)[0]
            dur = "-" if r["duration"] is None else f"{r['duration']:.2f}s"
            table.add_row(str(r["task_id"]), r["host"], r["status"],
                          "" if r["exit_code"] is None else str(r["exit_code"]),
                          str(r["started_at"])[:19], dur, first[:70])
        console.print(table)
        console.print(f"{len(data['items'])} of {data['total']} results")


async def _get(config: str | None, server: str | None, token: str | None, path: str,
               params: dict[str, Any]) -> Any:
    params = {k: v for k, v in params.items() if v is not None}
    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            return await c.call("GET", path, params=params)
    return await _local(config, path, params)


async def _local(config: str | None, path: str, params: dict[str, Any]) -> Any:
    """The same answers as the API, read from the configured database."""
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.storage.db import open_database
    from smallyi.tasks.queries import Archive, ResultFilter, TaskFilter, parse_time, result_dict, task_dict

    db = await open_database(settings(config))
    try:
        archive = Archive(db)
        since = parse_time(params["since"], field="--since") if params.get("since") else None
        until = parse_time(params["until"], field="--until") if params.get("until") else None
        limit = int(params.pop("limit", 50))
        if path == "/api/v1/tasks":
            tf = TaskFilter(status=params.get("status"), since=since, until=until,
                            command=params.get("command"), created_by=params.get("created_by"))
            trows, total = await archive.tasks(tf, scope=EVERY_HOST, limit=limit, offset=0)
            return {"items": [task_dict(t) for t in trows], "total": total}
        rf = ResultFilter(host=params.get("host"), status=params.get("status"), since=since, until=until,
                          task=params.get("task"))
        rrows, total = await archive.results(rf, scope=EVERY_HOST, limit=limit, offset=0)
        return {"items": [result_dict(r) for r in rrows], "total": total}
    finally:
        await db.close()


def _status(task: dict[str, Any], *, short: bool = False) -> str:
    """The status, with the queue position where the server knows it (``--server``: its queue)."""
    position = task.get("queue_position")
    if not position:
        return str(task["status"])
    return f"{task['status']} #{position}" if short else f"{task['status']} (queue position {position})"


async def _show(config: str | None, server: str | None, token: str | None, task_id: int) -> Any:
    import json

    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            task = await c.call("GET", f"/api/v1/tasks/{task_id}")
            res = await c.call("GET", f"/api/v1/tasks/{task_id}/results", params={"limit": 1000})
            return {"task": task, "results": res["items"]}
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.storage.db import open_database
    from smallyi.tasks.queries import Archive, ResultFilter, result_dict, task_dict

    db = await open_database(settings(config))
    try:
        archive = Archive(db)
        task = task_dict(await archive.task(task_id, scope=EVERY_HOST))
        rows, _ = await archive.results(ResultFilter(task=task_id), scope=EVERY_HOST, limit=100_000, offset=0)
        return json.loads(json.dumps({"task": task, "results": [result_dict(r) for r in rows]}, default=str))
    finally:
        await db.close()


async def _cancel(config: str | None, server: str | None, token: str | None, task_id: int) -> str:
    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            return str((await c.call("POST", f"/api/v1/tasks/{task_id}/cancel"))["result"])
    import getpass

    from smallyi.audit.anchor import AnchorFile
    from smallyi.audit.chain import AuditKeys
    from smallyi.audit.trail import AuditTrail
    from smallyi.secrets import keyring
    from smallyi.storage.db import open_database
    from smallyi.tasks.service import request_cancel

    s = settings(config)
    keys = AuditKeys(*keyring.load_audit_keys(s.audit)[:2])
    db = await open_database(s)
    try:
        what = await request_cancel(db, task_id, user=f"cli:{getpass.getuser()}")
        trail = AuditTrail(db, keys=keys, source="cli", anchor=AnchorFile(s.audit.anchor_file))
        await trail.record("task.cancel", actor=f"cli:{getpass.getuser()}", target=f"task {task_id}",
                           perm="tasks.cancel", detail={"result": what})
        await trail.flush()
        return what
    finally:
        await db.close()
