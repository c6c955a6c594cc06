"""``small-yi reload``: the running server reloads its config file, and says what changed.

Locally it finds the server by its pid file (``server.pid_file`` of ``--config``), sends it SIGHUP and
waits for its report; with ``--server URL --token T`` it asks through ``POST /api/v1/admin/reload``
(permission ``config.reload``, admins). Either way the report lists what was applied and what needs a
restart; a file the server refuses changes nothing and exits with status 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    ServerOpt,
    TokenOpt,
    console,
    fail,
    print_json,
    run,
    whoami,
)
from smallyi.errors import InputError, SmallYiError


def register(app: typer.Typer) -> None:
    @app.command()
    def reload(
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None, output: OutputOpt = OutputFormat.text,
        timeout: Annotated[float, typer.Option(min=1, help="seconds to wait for the server's report")] = 60.0,
    ) -> None:
        """Have the running server reload its config file now (as SIGHUP does): users, roles, the command
        policy, notification channels, SSH and execution settings apply at once; what needs a restart
        (server.listen, database...) is named. An invalid file changes nothing (exit status 2)."""
        _show(run(lambda: _remote(server, token)) if server else _local(config, timeout), output)


async def _remote(server: str, token: str | None) -> dict[str, Any]:
    from smallyi.cli.client import Client

    async with Client(server, token) as c:
        try:
            return dict(await c.call("POST", "/api/v1/admin/reload"))
        except InputError as exc:  # 422: the route takes no input, so this is a refused config
            message = exc.message.removeprefix("server: ")
            return {"status": "refused", "error": message, "message": message}


def _local(config: str | None, timeout: float) -> dict[str, Any]:
    import contextlib
    import os
    import signal
    import time
    from pathlib import Path

    from smallyi.cli import pidfile
    from smallyi.config import config_path, load_settings

    path = config_path(config)
    try:
        s = load_settings(path)
    except SmallYiError as exc:
        fail(f"{exc.message}\nno server was asked to reload: a running server keeps the config it has")
    pid_file = Path(s.server.pid_file)
    try:
        found = pidfile.find_server(pid_file)
    except SmallYiError as exc:
        fail(exc.message)
    if found.config and found.config != str(path.resolve()):
        console.print(f"note: the server (pid {found.pid}) runs the config {found.config}: it reloads that file",
                      markup=False)
    with contextlib.suppress(OSError):  # unwritable: the server records the reload as asked by "signal"
        pidfile.ask(pid_file, whoami())
    since = time.time_ns()
    try:
        os.kill(found.pid, signal.SIGHUP)
    except OSError as exc:
        with contextlib.suppress(OSError):  # no reload comes for this request: a later SIGHUP is not ours
            pidfile.request_path(pid_file).unlink()
        if isinstance(exc, PermissionError):
            fail(f"cannot signal the server (pid {found.pid}): permission denied; run this as the user the server "
                 "runs as (or root), or use --server URL --token T")
        fail(f"the server (pid {found.pid}) stopped before it could be asked to reload")
    try:
        data = pidfile.wait_report(pid_file, since_ns=since, timeout=timeout)
    except SmallYiError as exc:
        fail(exc.message)
    if data is None:
        fail(f"sent SIGHUP to the server (pid {found.pid}), but it reported no reload within {timeout:g}s; "
             "its log says what happened")
    return data


def _show(data: dict[str, Any], output: OutputFormat) -> None:
    refused = data.get("status") == "refused"
    if output is OutputFormat.json:
        print_json(data)
        if refused:
            raise typer.Exit(2)
        return
    if refused:
        fail(str(data.get("message") or data.get("error")))
    if data.get("status") == "unchanged":
        console.print(f"reloaded {data['config']}: nothing changed", markup=False)
        return
    console.print(f"reloaded {data['config']} (asked by {data['by']}, via {data['via']})", markup=False)
    changed = data.get("changed", [])
    applied = [c for c in changed if not c.get("restart")]
    console.print("applied:" + ("" if applied else " nothing"), markup=False)
    for c in applied:
        console.print(f"  {c['key']}: {c['detail']}", markup=False, soft_wrap=True)
    if data.get("restart"):
        console.print("needs a restart:", markup=False)
        for c in data["restart"]:
            console.print(f"  {c['key']}: {c['detail']} ({c['restart']})", markup=False, soft_wrap=True)
