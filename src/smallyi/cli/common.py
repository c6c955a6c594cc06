"""What every command shares: options, config loading, running async code, printing errors."""

from __future__ import annotations

import asyncio
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from smallyi.errors import SmallYiError

if TYPE_CHECKING:  # the config (pydantic, YAML) loads only for commands that read it: not `run --server`
    from smallyi.config import Settings

T = TypeVar("T")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class OutputFormat(enum.StrEnum):
    text = "text"
    json = "json"


ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="config file (default: $SMALLYI_CONFIG, else ./config.yaml)"),
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="text for people, json for scripts")]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", envvar="SMALLYI_SERVER", help="URL of a running small-yi server to submit to"),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="SMALLYI_TOKEN", help="API token for --server", show_default=False)
]


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
    """The message as it is (never read as Rich markup or emoji codes: it may quote user input)."""
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, emoji=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
