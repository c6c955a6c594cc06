"""``small-yi logs``: follow a file on every host of a target, one merged ``[host] line`` stream."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
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
    run,
    settings,
    whoami,
)
from smallyi.cli.render import LivePrinter
from smallyi.cli.target import GroupOpt, HostsOpt, LabelOpt, selector
from smallyi.cli.termsafe import Show

if TYPE_CHECKING:  # the command's own imports stay lazy
    from smallyi.cli.ndjson import Printer
    from smallyi.config import Settings
    from smallyi.inventory.selectors import Selector


def register(app: typer.Typer) -> None:
    @app.command()
    def logs(
        file: Annotated[list[str], typer.Option("--file", "-f", help="absolute path of the file; repeatable")],
        group: GroupOpt = None,
        hosts: HostsOpt = None,
        label: LabelOpt = None,
        grep: Annotated[str | None, typer.Option(help="only lines matching this regular expression")] = None,
        lines: Annotated[int, typer.Option(min=0, max=100_000, help="lines of history to start with")] = 10,
        raw: RawOpt = False,
        color: ColorOpt = False,
        output: StreamOutputOpt = StreamFormat.text,
        config: ConfigOpt = None,
        server: ServerOpt = None,
        token: TokenOpt = None,
    ) -> None:
        """Follow log files across a target until Ctrl-C; hosts that drop out are reported and rejoined."""
        from smallyi.errors import SmallYiError
        from smallyi.execution.follow import check_files, compile_grep

        try:
            sel = selector(group, hosts, label)
            check_files(file)
            compile_grep(grep)
        except SmallYiError as exc:
            fail(exc.message)
        # a follow never ends: -o json is one object per event too, the same as ndjson
        printer = LivePrinter(0, show=Show.of(raw=raw, color=color)) if output is StreamFormat.text else _ndjson()
        if server:
            params: list[tuple[str, str]] = [("lines", str(lines))] + [("file", f) for f in file]
            params += [(k, str(v)) for k, v in sel.to_dict().items() if k == "group"]
            if sel.hosts:
                params.append(("hosts", ",".join(sel.hosts)))
            params += [("label", f"{k}={v}") for k, v in sel.labels.items()]
            if grep:
                params.append(("grep", grep))
            run(lambda: _remote(server, token, params, printer))
        else:
            s = settings(config)
            run(lambda: _local(s, sel, file, lines, grep, printer))


def _ndjson() -> Printer:
    from smallyi.cli import ndjson

    return ndjson.Printer(follow=True)


async def _until_interrupted(work: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await work(stop)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)


async def _local(s: Settings, sel: Selector, files: list[str], lines: int, grep: str | None,
                 printer: LivePrinter | Printer) -> None:
    from smallyi.execution.wire import Wire
    from smallyi.logs.follow import follow
    from smallyi.runtime import Runtime

    rt = await Runtime.open(s, kind="cli")

    def show(w: Wire) -> None:
        printer(w)
        if isinstance(printer, LivePrinter):
            printer.out.flush()

    try:
        async def work(stop: asyncio.Event) -> None:
            await follow(rt.engine, rt.inventory, sel, files=files, lines=lines, grep=grep, on_event=show,
                         cancel=stop, user=whoami())
        await _until_interrupted(work)
    finally:
        if isinstance(printer, LivePrinter):
            printer.finish()
        await rt.close()


async def _remote(server: str, token: str | None, params: list[tuple[str, str]], printer: LivePrinter | Printer) -> None:
    import urllib.parse

    import websockets

    from smallyi.cli.client import Client
    from smallyi.errors import SmallYiError

    client = Client(server, token)
    await client.http.aclose()
    url = client.ws_url("/api/v1/logs/stream?" + urllib.parse.urlencode(params))

    async def work(stop: asyncio.Event) -> None:
        async with websockets.connect(url, subprotocols=[websockets.Subprotocol(f"bearer.{client.token}")],
                                      max_size=None) as ws:
            reader = asyncio.ensure_future(_read(ws, printer))
            waiter = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader in done:
                reader.result()
            else:
                reader.cancel()

    try:
        await _until_interrupted(work)
    except websockets.InvalidStatus as exc:
        raise SmallYiError(f"server refused the log stream: HTTP {exc.response.status_code}") from None
    except websockets.ConnectionClosedError as exc:  # e.g. 4401: the token was revoked or the session ended
        why = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else "the connection was lost"
        raise SmallYiError(f"the server closed the log stream: {why}") from None


async def _read(ws: Any, printer: Any) -> None:
    from smallyi.errors import SmallYiError

    async for raw in ws:
        msg = json.loads(raw)
        if msg["type"] == "error":
            raise SmallYiError(f"server: {msg['message']}")
        for w in msg["events"]:
            printer(w)
        if isinstance(printer, LivePrinter):
            printer.out.flush()
