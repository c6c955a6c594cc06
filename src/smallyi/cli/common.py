"""What every command shares: options, config loading, running async code, printing errors."""

from __future__ import annotations

import asyncio
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console, ConsoleOptions, RenderableType, RenderHook, RenderResult
from rich.segment import Segment
from rich.text import Text

from smallyi.cli.termsafe import safe, safe_json
from smallyi.errors import SmallYiError
from smallyi.timestamps import iso, shown

if TYPE_CHECKING:  # the config (pydantic, YAML) loads only for commands that read it: not `run --server`
    from smallyi.config import Settings
    from smallyi.runtime import Runtime

T = TypeVar("T")


def _width(stream: Any) -> int | None:
    """A terminal's own width; piped, wide enough that no table column or line is cut or wrapped (Rich
    would lay it out for 80 columns and cut timestamps and fingerprints with "…")."""
    try:
        return None if stream.isatty() else 100_000
    except (AttributeError, ValueError):
        return None


class _Inert:
    """A renderable whose segments' text is passed through ``termsafe.safe`` (newlines kept)."""

    __slots__ = ("inner",)

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for seg in console.render(self.inner, options):
            if seg.control or seg.text.isprintable():
                yield seg
            else:
                yield Segment(safe(seg.text, newlines=True), seg.style)


class _InertHook(RenderHook):
    """The consoles' backstop: whatever a command prints, no control sequence in its text reaches the
    terminal (Rich's own styling is applied after this, from the segments' styles)."""

    def process_renderables(self, renderables: list[Any]) -> list[Any]:
        return [_Inert(r) for r in renderables]


def _console(*, stderr: bool = False) -> Console:
    """A console that never reads what it prints as markup or emoji codes unless a call asks
    (``markup=True``, with stored text escaped), and shows any control character it is given."""
    c = Console(stderr=stderr, highlight=False, markup=False, emoji=False,
                width=_width(sys.stderr if stderr else sys.stdout))
    c.push_render_hook(_InertHook())
    return c


console = _console()
err_console = _console(stderr=True)


def plain(value: object) -> Text:
    """A value from a host or a user as Rich text: never markup, control characters shown (termsafe)."""
    return Text(safe(str(value)))


def page_note(shown: int, total: int, offset: int, what: str) -> str:
    """The line under a listing: how many of how many, and how to see the rest when there is more."""
    if not shown:
        return f"0 of {total} {what}" + (f" (--offset {offset} is past the end)" if offset and total else "")
    first, last = offset + 1, offset + shown
    if first == 1 and last >= total:
        return f"{shown} of {total} {what}"
    more = f"; more with --offset {last} or a larger --limit" if last < total else ""
    return f"showing {first}-{last} of {total} {what}{more}"


def esc(value: object) -> str:
    """A value from a host or a user inside a markup string (``print(..., markup=True)``): its brackets
    escaped, its control characters shown."""
    from rich.markup import escape

    return escape(safe(str(value)))


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


class StreamFormat(enum.StrEnum):
    """The output of a command that streams (``run``, ``logs``, ``tasks show``): also one JSON object per
    event as it happens (``cli/ndjson.py``)."""

    text = "text"
    json = "json"
    ndjson = "ndjson"


ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="config file (default: $SMALLYI_CONFIG, else ./config.yaml)"),
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="text for people, json for scripts")]
StreamOutputOpt = Annotated[StreamFormat, typer.Option(
    "--output", "-o", help="text for people, json for scripts (one document at the end), ndjson (one JSON "
    "object per event, as it happens)")]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", envvar="SMALLYI_SERVER", help="URL of a running small-yi server to submit to"),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="SMALLYI_TOKEN", help="API token for --server", show_default=False)
]
RawOpt = Annotated[bool, typer.Option(
    "--raw", help="print the hosts' output as received, escape sequences included (only for hosts you trust)")]
ColorOpt = Annotated[bool, typer.Option(
    "--color", help="keep the colours (SGR sequences) of the hosts' output; other sequences are still shown")]


def settings(config: str | None) -> Settings:
    """The settings of ``--config``, checked whole (roles, policy, keys) before the command creates anything;
    a bad config is one paragraph on stderr and exit status 2."""
    from smallyi.auth import config_check
    from smallyi.config import config_path, load_settings

    path = config_path(config)
    try:
        s = load_settings(path)
    except SmallYiError as exc:
        fail(exc.message)
    try:
        config_check.check(s)
    except SmallYiError as exc:
        fail(f"{path}: {exc.message}")
    return s


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run async CLI work; SmallYiError becomes a message on stderr and exit status 2."""
    try:
        return run_loop(_call(coro_fn))
    except SmallYiError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def in_runtime(s: Settings, fn: Callable[[Runtime], Awaitable[T]], *, references: bool = True) -> T:
    """``fn`` on a CLI runtime over ``s``, closed after; errors as ``run`` prints them. ``references=False``:
    the config's stored-secret references are left unread (``Runtime.open``)."""

    async def go() -> T:
        from smallyi.runtime import Runtime

        rt = await Runtime.open(s, kind="cli", references=references)
        try:
            return await fn(rt)
        finally:
            await rt.close()

    return run(go)


def whoami() -> str:
    """``cli:<login>``: who the local CLI acts as (in records, and as the decider of approvals)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop's event loop when it is installed (it is a dependency; plain asyncio otherwise).

    uvloop's transports and scheduler are C: a cold ``small-yi run`` on 500 hosts used 15-30% less CPU
    (docs/performance.md), and ``serve`` streams live output with less per-event overhead.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def settle_gc() -> None:
    """Once a process has loaded its code and opened its runtime: stop the garbage collector rescanning it.

    ``gc.freeze`` moves every object alive now (modules, classes, the runtime: most of the heap) out of
    the collector's generations, and a larger young generation makes full collections rarer: a cold
    500-host run used about 6% less CPU, and the server's full collections during a burst of output
    scan what it allocated since start-up only (docs/performance.md). The cost: a start-up object that
    later becomes part of a reference cycle is never collected; these live as long as the process anyway.
    """
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def fail(message: str, code: int = 2) -> NoReturn:
    """The message as it is (never read as Rich markup or emoji codes: it may quote user input), its
    control characters shown; a message of several lines keeps them."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", safe(message, newlines=True)), soft_wrap=True)
    raise typer.Exit(code)


def when(value: object) -> str:
    """A timestamp as tables and lines show it, ``2026-12-07T18:30:00Z`` (from a datetime or the API's
    text; ``timestamps.shown``); empty for none."""
    return shown(value)


def _json_default(value: Any) -> Any:
    """What ``json`` cannot write itself: a datetime as every timestamp (``timestamps.iso``), else its text."""
    from datetime import datetime

    return iso(value) if isinstance(value, datetime) else str(value)


def stdout_gone() -> None:
    """stdout is a closed pipe (``small-yi run ... | head``): point it at /dev/null, so that neither the
    next print nor the interpreter's last flush fails. The work goes on (and is archived); it is only
    no longer shown."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def print_json(data: Any) -> None:
    """JSON for scripts; a terminal showing it gets no C1 or BIDI controls (``termsafe.safe_json``)."""
    sys.stdout.write(safe_json(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)) + "\n")
