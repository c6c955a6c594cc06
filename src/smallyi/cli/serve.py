"""``small-yi serve`` (web console + API) and ``small-yi init`` (a starter config)."""

from __future__ import annotations

import contextlib
import errno
import logging
import secrets
import signal
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from smallyi.cli.common import ConfigOpt, fail, run_loop, settings, settle_gc

if TYPE_CHECKING:
    from smallyi.config import Settings

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
        """Run the web console and the HTTP API (default :8080)."""
        from smallyi.config import parse_listen
        from smallyi.errors import ConfigError

        s = settings(config)  # server.listen is checked with the rest of the config
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
            held = run_loop(_serve(s, sock, log_level))
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


async def _serve(s: Settings, sock: socket.socket, log_level: str) -> list[int]:
    """Serve until SIGINT/SIGTERM; returns the signals that stopped it, to be raised once all is closed."""
    import uvicorn

    from smallyi.app import create_app
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
        log.info("small-yi listening on http://%s:%s%s", host, port, s.server.base_path or "/")
        server = GracefulServer(cfg)
        await server.serve(sockets=[sock])
        return server.held
    finally:
        await runtime.close()

