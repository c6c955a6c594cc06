"""``small-yi tasks list|show|cancel`` and ``small-yi results``: the archive from the command line.

Reads the configured database directly, or a running server with ``--server``. Everything stored is
printed as text (never Rich markup) with its control sequences shown (``termsafe``). ``tasks show``
prints every host, reading the results a page at a time; ``tasks list`` and ``results`` print one
page and say when there are more (``--offset``, ``--limit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from smallyi.cli.common import (
    ColorOpt,
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    RawOpt,
    ServerOpt,
    StreamFormat,
    StreamOutputOpt,
    TokenOpt,
    console,
    page_note,
    plain,
    print_json,
    run,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app
from smallyi.cli.termsafe import Show, safe

LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="at most this many rows")]
OffsetOpt = Annotated[int, typer.Option(min=0, help="skip this many rows (the next page: --offset <rows shown>)")]
#: results read per query by ``tasks show`` (the API's largest page)
PAGE = 1000
SinceOpt = Annotated[str | None, typer.Option(help="since: a duration ago (1h) or a timestamp")]
UntilOpt = Annotated[str | None, typer.Option(help="until: a duration ago or a timestamp")]


def register(app: typer.Typer) -> None:
    tasks_app = typer_app(help="Tasks in the archive: list, show, cancel.", no_args_is_help=True)
    app.add_typer(tasks_app, name="tasks")

    @tasks_app.command("list")
    def list_(
        status: Annotated[str | None, typer.Option(help="queued, running, success, failed, cancelled, interrupted")] = None,
        since: SinceOpt = None, until: UntilOpt = None,
        command: Annotated[str | None, typer.Option(help="command text contains")] = None,
        user: Annotated[str | None, typer.Option("--user", help="started by")] = None,
        limit: LimitOpt = 20, offset: OffsetOpt = 0, output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Tasks, newest first: one page (--limit, --offset), and how many there are."""
        params = {"status": status, "since": since, "until": until, "command": command,
                  "created_by": user, "limit": limit, "offset": offset}

        def row(t: dict[str, Any]) -> list[Any]:
            counts = " ".join(f"{k}:{v}" for k, v in sorted(t["counts"].items()))
            return [str(t["id"]), plain(_status(t, short=True)), str(t["host_count"]), plain(counts),
                    when(t["created_at"]), plain(t["created_by"]), plain(_clip(t["command"], 60))]

        data = run(lambda: _get(config, server, token, "/api/v1/tasks", params))
        _print_page(data, output, offset, "tasks", ("id", "status", "hosts", "counts", "created", "by", "command"), row)

    @tasks_app.command()
    def show(
        task_id: Annotated[int, typer.Argument(help="task id")],
        raw: RawOpt = False, color: ColorOpt = False,
        output: StreamOutputOpt = StreamFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """A task with every host's result and archived output (all its hosts, however many); with
        ``-o ndjson`` its archived events as ``run -o ndjson`` streamed them."""
        if output is StreamFormat.ndjson:
            run(lambda: _show_events(config, server, token, task_id))
            return
        if output is StreamFormat.json:
            doc: dict[str, Any] = {"task": None, "results": []}

            def keep(t: dict[str, Any]) -> None:
                doc["task"] = t

            run(lambda: _show(config, server, token, task_id, keep, doc["results"].extend))
            return print_json(doc)
        from smallyi.cli.render import count_statuses, summary
        from smallyi.tasks.reasons import Reasons

        mode = Show.of(raw=raw, color=color)
        seen: dict[str, Any] = {}
        counts: dict[str, int] = {}
        reasons = Reasons()

        def on_task(t: dict[str, Any]) -> None:
            seen["task"] = t
            _print_task(t)

        def on_page(page: list[dict[str, Any]]) -> None:
            _print_results(page, mode)
            reasons.add_rows(page)
            for status, n in count_statuses(page).items():
                counts[status] = counts.get(status, 0) + n

        run(lambda: _show(config, server, token, task_id, on_task, on_page))
        summary(seen["task"], counts, reasons.groups())

    @tasks_app.command()
    def cancel(
        task_id: Annotated[int, typer.Argument(help="task id")],
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Cancel a queued or running task: remote commands stop, unfinished hosts end cancelled."""
        what = run(lambda: _cancel(config, server, token, task_id))
        typer.echo(f"task {task_id}: {safe(what)}")

    @app.command()
    def results(
        host: Annotated[str | None, typer.Option(help="host name")] = None,
        status: Annotated[str | None, typer.Option(help="success, failed, timeout, unreachable, ...")] = None,
        since: SinceOpt = None, until: UntilOpt = None,
        task: Annotated[int | None, typer.Option(help="task id")] = None,
        limit: LimitOpt = 50, offset: OffsetOpt = 0, output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Per-host results across tasks, newest first (by task, by host within one), filtered by host,
        status, time and task: one page (--limit, --offset), and how many there are."""
        params = {"host": host, "status": status, "since": since, "until": until, "task": task, "limit": limit,
                  "offset": offset}

        def row(r: dict[str, Any]) -> list[Any]:
            first = r["reason"] or (r["stdout"] or "").split("\n", 1)[0]
            dur = "-" if r["duration"] is None else f"{r['duration']:.2f}s"
            return [str(r["task_id"]), plain(r["host"]), plain(r["status"]),
                    "" if r["exit_code"] is None else str(r["exit_code"]), when(r["started_at"]), dur,
                    plain(_clip(first, 70))]

        data = run(lambda: _get(config, server, token, "/api/v1/results", params))
        _print_page(data, output, offset, "results",
                    ("task", "host", "status", "exit", "started", "duration", "reason / first line"), row)


def _print_page(data: dict[str, Any], output: OutputFormat, offset: int, what: str, columns: tuple[str, ...],
                row: Callable[[dict[str, Any]], list[Any]]) -> None:
    """One page of a listing: the answer as it is (json), or a table of its items and what more there is."""
    if output is OutputFormat.json:
        return print_json(data)
    table = Table(*columns, box=None, header_style="bold")
    for item in data["items"]:
        table.add_row(*row(item))
    console.print(table)
    console.print(page_note(len(data["items"]), data["total"], offset, what))


def _lines(text: str | None) -> list[str]:
    """The archived lines, split where the host's newlines were only (``str.splitlines`` also splits at a
    CR, a form feed or U+2028, which would hide them instead of showing them)."""
    return text.split("\n") if text else []


def _clip(text: str, n: int) -> str:
    """At most ``n`` characters, with an ellipsis when cut (a table column, not the archive)."""
    return text if len(text) <= n else text[: n - 1] + "…"


def _print_task(t: dict[str, Any]) -> None:
    console.print(Text.assemble(f"task {t['id']} ", (safe(_status(t)), "bold"),
                                f": {safe(repr(t['command']))} on {safe(str(t['target']))} "
                                f"by {safe(str(t['created_by']))} at {when(t['created_at'])}"), soft_wrap=True)


def _print_results(results: list[dict[str, Any]], mode: Show) -> None:
    """Each host's status and its archived lines as ``[host] line`` (``[host]! line`` for stderr); the
    reasons come once each, at the end (``render.summary``)."""
    import sys

    for r in results:
        host = safe(r["host"])
        code = "" if r["exit_code"] is None else f" exit {r['exit_code']}"
        console.print(Text.assemble((f"== {host}", "bold"), f" {safe(r['status'])}{code}"), soft_wrap=True)
        console.file.flush()
        out = sys.stdout  # the lines as LivePrinter writes them: not through Rich, which would re-wrap them
        for line in _lines(r["stdout"]):
            out.write(f"[{host}] {mode.text(line)}\n")
        for line in _lines(r["stderr"]):
            out.write(f"[{host}]! {mode.text(line)}\n")
        out.flush()
        if r["truncated"]:
            console.print(f"  (output cut: {r['stdout_cut'] + r['stderr_cut']} bytes not archived)")


async def _get(config: str | None, server: str | None, token: str | None, path: str,
               params: dict[str, Any]) -> Any:
    params = {k: v for k, v in params.items() if v is not None and not (k == "offset" and v == 0)}
    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            return await c.call("GET", path, params=params)
    return await _local(config, path, params)


async def _local(config: str | None, path: str, params: dict[str, Any]) -> Any:
    """The same answers as the API, read from the configured database."""
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.storage.db import open_database
    from smallyi.tasks.queries import Archive, ResultFilter, TaskFilter, parse_window, result_dict, task_dict

    db = await open_database(settings(config))
    try:
        archive = Archive(db)
        since, until = parse_window(params.get("since"), params.get("until"), flag="--")
        limit = int(params.pop("limit", 50))
        offset = int(params.pop("offset", 0))
        if path == "/api/v1/tasks":
            tf = TaskFilter(status=params.get("status"), since=since, until=until,
                            command=params.get("command"), created_by=params.get("created_by"))
            trows, total = await archive.tasks(tf, scope=EVERY_HOST, limit=limit, offset=offset)
            return {"items": [task_dict(t) for t in trows], "total": total}
        rf = ResultFilter(host=params.get("host"), status=params.get("status"), since=since, until=until,
                          task=params.get("task"))
        rrows, total = await archive.results(rf, scope=EVERY_HOST, limit=limit, offset=offset)
        return {"items": [result_dict(r) for r in rrows], "total": total}
    finally:
        await db.close()


def _status(task: dict[str, Any], *, short: bool = False) -> str:
    """The status, with the queue position where the server knows it (``--server``: its queue)."""
    position = task.get("queue_position")
    if not position:
        return str(task["status"])
    return f"{task['status']} #{position}" if short else f"{task['status']} (queue position {position})"


Page = Callable[[list[dict[str, Any]]], None]


async def _show(config: str | None, server: str | None, token: str | None, task_id: int,
                on_task: Callable[[dict[str, Any]], None], on_page: Page) -> None:
    """Hand over the task, then its results a page at a time (by host name), every page to the last."""
    import json

    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            on_task(await c.call("GET", f"/api/v1/tasks/{task_id}"))

            async def remote(offset: int) -> tuple[list[dict[str, Any]], int]:
                res = await c.call("GET", f"/api/v1/tasks/{task_id}/results", params={"limit": PAGE, "offset": offset})
                return res["items"], int(res["total"])

            await _pages(remote, on_page)
        return
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.storage.db import open_database
    from smallyi.tasks.queries import Archive, ResultFilter, result_dict, task_dict

    db = await open_database(settings(config))
    try:
        archive = Archive(db)
        on_task(json.loads(json.dumps(task_dict(await archive.task(task_id, scope=EVERY_HOST)), default=str)))

        async def local(offset: int) -> tuple[list[dict[str, Any]], int]:
            rows, total = await archive.results(ResultFilter(task=task_id), scope=EVERY_HOST, limit=PAGE,
                                                offset=offset)
            return json.loads(json.dumps([result_dict(r) for r in rows], default=str)), total

        await _pages(local, on_page)
    finally:
        await db.close()


async def _show_events(config: str | None, server: str | None, token: str | None, task_id: int) -> None:
    """The task, its archived events (``/output``, 10,000 a request) and its summary, as ndjson lines."""
    from smallyi.cli import ndjson

    lines = ndjson.Printer()
    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            lines.begin(await c.call("GET", f"/api/v1/tasks/{task_id}"))
            after = 0
            while page := (await c.call("GET", f"/api/v1/tasks/{task_id}/output",
                                        params={"after": after, "limit": 10_000}))["items"]:
                for w in page:
                    lines(w)
                after = page[-1]["seq"]
            brief = await c.call("GET", f"/api/v1/tasks/{task_id}/summary", params={"results": "false"})
        lines.summary(brief["task"], brief["counts"], brief["reasons"])
        return
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.storage.db import open_database
    from smallyi.tasks.queries import Archive, task_dict
    from smallyi.tasks.service import archived_events
    from smallyi.tasks.summary import summarize

    db = await open_database(settings(config))
    try:
        lines.begin(task_dict(await Archive(db).task(task_id, scope=EVERY_HOST)))
        after = 0
        while events := await archived_events(db, task_id, after, 10_000, scope=EVERY_HOST):
            for w in events:
                lines(w)
            after = events[-1]["seq"]
        brief = await summarize(db, task_id, scope=EVERY_HOST, results=False)
        task = task_dict(await Archive(db).task(task_id, scope=EVERY_HOST))
    finally:
        await db.close()
    lines.summary(task, brief["counts"], brief["reasons"])


async def _pages(read: Callable[[int], Awaitable[tuple[list[dict[str, Any]], int]]], on_page: Page) -> None:
    """Read pages from offset 0 until the total is reached (or a page comes back empty)."""
    offset = 0
    while True:
        items, total = await read(offset)
        if items:
            on_page(items)
        offset += len(items)
        if not items or offset >= total:
            return


async def _cancel(config: str | None, server: str | None, token: str | None, task_id: int) -> str:
    if server:
        from smallyi.cli.client import Client

        async with Client(server, token) as c:
            return str((await c.call("POST", f"/api/v1/tasks/{task_id}/cancel"))["result"])
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
        what = await request_cancel(db, task_id, user=whoami())
        trail = AuditTrail(db, keys=keys, source="cli", anchor=AnchorFile(s.audit.anchor_file))
        await trail.record("task.cancel", actor=whoami(), target=f"task {task_id}",
                           perm="tasks.cancel", detail={"result": what})
        await trail.flush()
        return what
    finally:
        await db.close()
