"""``small-yi serve`` (web console + API) and ``small-yi init`` (a starter config)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smallyi.cli.common import ConfigOpt, fail, run_loop, settings, settle_gc

if TYPE_CHECKING:
    from smallyi.config import Settings
    from smallyi.reloader import Reloader

STARTER = """\
# small-yi configuration — see docs/config.md for every key.
server:
  listen: "{listen}"
database:
  driver: sqlite3                 # sqlite3 (embedded, default) | postgres
  source: ./data/small-yi.db      # file path, or a postgresql:// URL
auth:
  users:
    - username: admin
      password_hash: "{hash}"  # from `small-yi hashpwd`
"""


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: ConfigOpt = None,
        listen: Annotated[str | None, typer.Option(help="HOST:PORT or :PORT (overrides server.listen)")] = None,
        log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    ) -> None:
        """Run the web console and the HTTP API (default :8080). SIGHUP reloads the config file
        (`small-yi reload`; docs/config.md)."""
        from smallyi.config import config_path, parse_listen
        from smallyi.errors import ConfigError

        signal.signal(signal.SIGHUP, _early_hup)  # a reload asked for while starting is done once started
        path = config_path(config)
        s = settings(config)  # server.listen is checked with the rest of the config
        source = _Source(path, listen, s.server.listen)
        if listen:
            try:
                parse_listen(listen, field="--listen")
            except ConfigError as exc:
                fail(exc.message)
            s = s.model_copy(update={"server": s.server.model_copy(update={"listen": listen})})
        host, port = s.server.host_port()
        _setup_logging(log_level)
        sock = _bind(host, port)
        with contextlib.suppress(KeyboardInterrupt):
            held = run_loop(_serve(s, sock, log_level, source))
            # the runtime is closed now (tasks archived, interrupted ones marked): die of the signal
            # as the process manager expects
            for sig in held:
                signal.raise_signal(sig)

    @app.command()
    def init(
        config: ConfigOpt = None,
        listen: Annotated[str, typer.Option(help="server.listen to write")] = ":8080",
        force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
    ) -> None:
        """Write a starter config with user admin and a random password, printed once."""
        from smallyi.auth.passwords import hash_password
        from smallyi.config import config_path, parse_listen
        from smallyi.errors import ConfigError
        from smallyi.storage import private

        try:
            parse_listen(listen, field="--listen")  # a file that `serve` would refuse is not written
        except ConfigError as exc:
            fail(exc.message)
        path = config_path(config)
        if path.exists() and not force:
            typer.echo(f"{path} exists; keeping it (use --force to overwrite)")
            return
        password = secrets.token_urlsafe(12)
        with private.open_new(path, "w", encoding="utf-8") as fh:  # 0600 from creation: it holds a hash
            fh.write(STARTER.format(listen=listen, hash=hash_password(password)))
        typer.echo(f"wrote {path}\nlog in as  admin / {password}  (shown once; change it with `small-yi hashpwd`)")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a busy port is a clear error, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted
    # sockets inherit it. Without it, Nagle holds each response's second write for the client's
    # delayed ACK: +40 ms on every keep-alive request and on WebSocket frames.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"cannot listen on {host}:{port}"
        if isinstance(exc, socket.gaierror):
            fail(f"{where}: the host name does not resolve ({exc.strerror}); "
                 "give an address of this machine in --listen or server.listen")
        if exc.errno == errno.EADDRINUSE:
            fail(f"{where}: {exc.strerror}; is another server running there? "
                 "Choose another with --listen or server.listen")
        fail(f"{where}: {exc.strerror or exc}; check --listen or server.listen "
             "(an address of this machine; ports below 1024 need privileges)")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class _Source:
    """Where the config came from: its file, ``--listen`` (which overrides the file's), the file's listen."""

    path: Path
    listen: str | None
    file_listen: str


_HUPS: list[int] = []


def _early_hup(signum: int, _frame: object) -> None:
    _HUPS.append(signum)


async def _serve(s: Settings, sock: socket.socket, log_level: str, source: _Source) -> list[int]:
    """Serve until SIGINT/SIGTERM; returns the signals that stopped it, to be raised once all is closed."""
    import uvicorn

    from smallyi import reloader
    from smallyi.app import create_app
    from smallyi.cli import pidfile
    from smallyi.cli.graceful import GracefulServer
    from smallyi.errors import SmallYiError
    from smallyi.runtime import Runtime

    try:
        runtime = await Runtime.open(s, kind="server")
    except SmallYiError as exc:
        fail(exc.message)
    log = logging.getLogger("smallyi")
    if not s.auth.users:
        log.warning("no users in auth.users: nobody can log in; add one (see `small-yi hashpwd`)")
    reloads = reloader.Reloader(runtime, source.path, listen=source.listen, file_listen=source.file_listen)
    reloader.attach(runtime, reloads)
    pid_file = Path(s.server.pid_file)
    hups = asyncio.create_task(_on_hup(reloads, pid_file), name="sighup")
    try:
        app = create_app(s, runtime=runtime)
        settle_gc()  # the code and the runtime are loaded: the collector need not rescan them
        cfg = uvicorn.Config(
            app, log_level=log_level, proxy_headers=bool(s.server.trusted_proxies),
            forwarded_allow_ips=list(s.server.trusted_proxies), root_path=s.server.base_path,
            ws_ping_interval=20, ws_max_size=s.server.max_ws_message,
            timeout_graceful_shutdown=5, log_config=None,
        )
        host, port = sock.getsockname()[:2]
        try:
            other = pidfile.claim(pid_file, config=str(source.path.resolve()), listen=f"{host}:{port}")
        except OSError as exc:
            other = None
            log.warning("cannot write the pid file %s (%s): `small-yi reload` cannot find this server; "
                        "SIGHUP and `small-yi reload --server URL` still reload it", pid_file, exc.strerror)
        if other is not None:
            log.warning("the pid file %s belongs to the running server %d (%s): `small-yi reload` reaches that "
                        "one; give this server its own server.pid_file", pid_file, other.pid, other.listen)
        log.info("small-yi listening on http://%s:%s%s", host, port, s.server.base_path or "/")
        server = GracefulServer(cfg)
        await server.serve(sockets=[sock])
        return server.held
    finally:
        hups.cancel()
        with contextlib.suppress(BaseException):
            await hups
        pidfile.release(pid_file)
        await runtime.close()


async def _on_hup(reloads: Reloader, pid_file: Path) -> None:
    """Reload the config at each SIGHUP (several while one runs: one more after it), and leave the report
    beside the pid file for `small-yi reload`. A refused reload is logged and reported; the server goes on."""
    from smallyi.cli import pidfile

    log = logging.getLogger("smallyi")
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, wake.set)
    try:
        if _HUPS:
            _HUPS.clear()
            wake.set()
        while True:
            await wake.wait()
            wake.clear()
            try:
                report = await reloads.reload(by=pidfile.asked(pid_file) or "signal", via="signal")
                pidfile.write_report(pid_file, report.to_dict())
            except Exception:  # a bug in a reload must not stop the server: later ones may work
                log.exception("config reload after SIGHUP failed")
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, _early_hup)  # while stopping, a SIGHUP must not kill the server

