"""``small-yi run``: a command on a group, every line live as ``[host] line``, then a summary.

In-process by default (the same engine, archiving into the configured database, so the server sees
the task); with ``--server URL`` it submits to a running server and streams the output back.
Exit status (``cli.exits``): 0 if every host succeeded, else 4 if a host was unreachable, 3 if one timed
out, 1 if one failed; 2 for bad input, 130 when interrupted.
"""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallyi.cli.common import (
    ColorOpt,
    ConfigOpt,
    RawOpt,
    ServerOpt,
    StreamFormat,
    StreamOutputOpt,
    TokenOpt,
    fail,
    print_json,
    run,
    settings,
    settle_gc,
    whoami,
)
from smallyi.cli.exits import INTERRUPTED, exit_status
from smallyi.cli.target import GroupOpt, HostsOpt, LabelOpt, selector
from smallyi.cli.termsafe import Show

if TYPE_CHECKING:  # the command's own imports stay lazy: `run --help` starts fast
    from smallyi.config import Settings
    from smallyi.inventory.selectors import Selector


def register(app: typer.Typer) -> None:
    @app.command(name="run")
    def run_cmd(
        cmd: Annotated[str, typer.Option("--cmd", help="the shell command to run on every host")],
        group: GroupOpt = None,
        hosts: HostsOpt = None,
        label: LabelOpt = None,
        timeout: Annotated[str | None, typer.Option(help="command timeout, Go style: 10s, 1m30s")] = None,
        concurrency: Annotated[int | None, typer.Option(min=1, help="hosts at once (default from config)")] = None,
        rate: Annotated[str | None, typer.Option(help="new connections per second, e.g. 20/s")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no output lines, only the summary")] = False,
        raw: RawOpt = False,
        color: ColorOpt = False,
        output: StreamOutputOpt = StreamFormat.text,
        config: ConfigOpt = None,
        server: ServerOpt = None,
        token: TokenOpt = None,
        notify: Annotated[str | None, typer.Option(
            "--notify", help="tell these channels how it went: CHANNEL[,CHANNEL]", show_default=False)] = None,
        notify_on: Annotated[str | None, typer.Option(
            "--notify-on", help="when to tell them: failure (default), success, finish; comma-separated")] = None,
    ) -> None:
        """Run a command on a group, host list or label selection."""
        from smallyi.durations import parse_rate, parse_timeout  # not from smallyi.api: no FastAPI here
        from smallyi.errors import SmallYiError
        from smallyi.policy import command_text

        try:
            sel = selector(group, hosts, label)
            command_text.check(cmd, field="--cmd")
            t = parse_timeout(timeout, field="--timeout") if timeout else None
            r = parse_rate(rate)
        except SmallYiError as exc:
            fail(exc.message)
        show = Show.of(raw=raw, color=color)
        told = None
        if notify or notify_on:
            from smallyi.cli import task_notify

            told = task_notify.spec(notify, notify_on)
        if server:
            from smallyi.cli.client import remote_run

            body: dict[str, Any] = {"target": sel.to_dict(), "cmd": cmd, "timeout": timeout,
                                    "concurrency": concurrency, "rate": r, "notify": told}
            counts = run(lambda: remote_run(server, token, body, output=output, quiet=quiet, show=show))
        else:
            s = settings(config)
            counts = run(lambda: _local(s, sel, cmd, t, concurrency, r, output=output, quiet=quiet,
                                        notify=told, show=show))
        raise typer.Exit(exit_status(counts))


async def _local(s: Settings, sel: Selector, cmd: str, timeout: float | None, concurrency: int | None, rate: float,
                 *, output: StreamFormat, quiet: bool, notify: dict[str, Any] | None = None,
                 show: Show = Show.SAFE) -> dict[str, int]:
    from smallyi.auth.caller import Caller
    from smallyi.auth.gate import Held
    from smallyi.auth.rbac import EVERY_HOST
    from smallyi.cli import ndjson
    from smallyi.cli.render import LivePrinter, count_statuses, summary
    from smallyi.errors import SmallYiError
    from smallyi.runtime import Runtime
    from smallyi.tasks.queries import ResultFilter, result_dict, task_dict
    from smallyi.tasks.service import TaskRequest
    from smallyi.tasks.summary import summarize

    rt = await Runtime.open(s, kind="cli")
    settle_gc()  # the code and the runtime are loaded: the collector need not rescan them during the run
    interrupted = False
    pending: set[asyncio.Task[str]] = set()
    sender = None
    try:
        if notify:  # unknown channels stop here, before anything runs
            from smallyi.cli.task_notify import Sender

            sender = Sender(rt)
            await sender.check(notify)
        printer: LivePrinter | ndjson.Printer | None = None
        if output is StreamFormat.text:
            printer = LivePrinter(0, quiet=quiet, show=show)
        elif output is StreamFormat.ndjson:
            printer = ndjson.Printer(quiet=quiet)
        submitted = await rt.tasks.submit(
            TaskRequest(sel, cmd, timeout=timeout, concurrency=concurrency, rate=rate, notify=notify),
            Caller(whoami()), listener=printer,
        )
        if isinstance(submitted, Held):  # nothing runs until another user approves it
            raise SmallYiError(submitted.message)
        task_id = submitted.task_id
        if isinstance(printer, LivePrinter):
            printer.total = (await rt.archive.task(task_id, scope=EVERY_HOST)).host_count
        elif isinstance(printer, ndjson.Printer):
            printer.begin(task_dict(await rt.archive.task(task_id, scope=EVERY_HOST)))
        loop = asyncio.get_running_loop()

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            pending.add(loop.create_task(rt.tasks.cancel(task_id, user=whoami())))

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            await rt.tasks.wait(task_id)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        if isinstance(printer, LivePrinter):
            printer.finish()
        task = task_dict(await rt.archive.task(task_id, scope=EVERY_HOST))
        if output is StreamFormat.json:  # every host's result, output included
            rows, _ = await rt.archive.results(ResultFilter(task=task_id), scope=EVERY_HOST, limit=1_000_000,
                                               offset=0)
            results = [result_dict(r) for r in rows]
            print_json({"task": task, "results": results})
            counts = count_statuses(results)
        else:  # counts, and each distinct reason of the hosts that did not succeed
            brief = await summarize(rt.db, task_id, scope=EVERY_HOST, results=False)
            counts = brief["counts"]
            if isinstance(printer, ndjson.Printer):
                printer.summary(task, counts, brief["reasons"], exit_status=INTERRUPTED if interrupted else exit_status(counts))
            else:
                summary(task, counts, brief["reasons"])
        if sender is not None and notify:
            await sender.send(task_id, notify)
    finally:
        if sender is not None:
            await sender.close()
        await rt.close()
    if interrupted:
        raise typer.Exit(INTERRUPTED)
    return counts
