"""Every place small-yi reaches into a library's internals, each behind a check of the version it was written for.

- asyncssh: :func:`guard_asyncssh_logs` makes its loggers check the level before formatting (a tenth of a
  cold host's CPU otherwise goes to records that are then dropped).
- Typer: :func:`pacify_closed_pipes` and :func:`print_aborted` (the CLI's fast path ends as Typer's own
  standalone mode does), :func:`hide_argument_type` (help shows ``NAME``, not ``NAME <str>``).
- FastAPI: :func:`app_routes` walks included routers, which recent FastAPI keeps nested, with its
  ``routing.iter_route_contexts`` (the permission check and the route tests must see every route).

Outside the tested range (:data:`TESTED`) a patch is not applied and the fallback is plain behaviour
(slower logging, Typer's own help), never a crash; ``tests/unit/test_compat.py`` fails when an installed
version leaves the range, so an upgrade is checked before the range is widened. pyproject.toml caps these
dependencies at the same bounds. Libraries are imported inside the functions: this module sits in the base
layer and must not load asyncssh for commands that never use it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import typing
from typing import Any

log = logging.getLogger(__name__)

#: package -> (oldest, first untested) version, as (major, minor)
TESTED: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "asyncssh": ((2, 14), (2, 25)),
    "typer": ((0, 12), (0, 30)),
    "fastapi": ((0, 110), (0, 170)),
}


@functools.cache
def tested(package: str) -> bool:
    """Whether the installed ``package`` is in the range its patches were written for (warned once if not)."""
    import importlib

    low, high = TESTED[package]
    found = str(getattr(importlib.import_module(package), "__version__", ""))  # imported already where used
    m = re.match(r"(\d+)\.(\d+)", found)
    ok = m is not None and low <= (int(m.group(1)), int(m.group(2))) < high
    if not ok:
        log.warning("%s %s is outside the versions small-yi's adjustments were written for (%s to before %s); "
                    "they are left out", package, found, ".".join(map(str, low)), ".".join(map(str, high)))
    return ok


def guard_asyncssh_logs() -> bool:
    """Make asyncssh check its log level before it formats a message, not after; True once applied.

    ``SSHLogger.log`` turns every argument into text (decoding bytes, joining lists) and
    ``SSHPacketLogger._log_packet`` names and measures every packet, and only then does the logger drop
    the result. With these guards a record that would be logged is logged exactly as before; one that
    would be dropped costs nothing.
    """
    if not tested("asyncssh"):
        return False
    import asyncssh

    ssh_logger: Any = getattr(asyncssh.logging, "SSHLogger", None)
    if ssh_logger is None:
        return False
    if getattr(ssh_logger, "_smallyi_guarded", False):
        return True
    log_record = ssh_logger.log

    def guarded(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            log_record(self, level, msg, *args, **kwargs)

    ssh_logger.log = guarded
    ssh_logger._smallyi_guarded = True
    packet_logger: Any = getattr(asyncssh.packet, "SSHPacketLogger", None)
    log_packet = getattr(packet_logger, "_log_packet", None)
    if log_packet is not None and hasattr(ssh_logger, "_debug_level"):

        def _log_packet(self: Any, *args: Any, **kwargs: Any) -> None:
            if ssh_logger._debug_level >= 3:  # what SSHLogger.packet itself checks
                log_packet(self, *args, **kwargs)

        packet_logger._log_packet = _log_packet
    return True


def pacify_closed_pipes() -> None:
    """After EPIPE on stdout, keep the interpreter's final flush quiet (as Click's standalone mode does)."""
    if tested("typer"):
        try:
            from typer._click.utils import PacifyFlushWrapper
        except ImportError:
            pass
        else:
            sys.stdout = typing.cast(typing.TextIO, PacifyFlushWrapper(sys.stdout))
            sys.stderr = typing.cast(typing.TextIO, PacifyFlushWrapper(sys.stderr))
            return
    sys.stdout = typing.cast(typing.TextIO, open(os.devnull, "w"))  # noqa: SIM115 (lives until exit)


def print_aborted() -> None:
    """Typer's "Aborted" message, as its standalone mode prints it."""
    if tested("typer"):
        try:
            from typer import rich_utils

            rich_utils.rich_abort_error()
            return
        except (ImportError, AttributeError):
            pass
    sys.stderr.write("Aborted!\n")


def hide_argument_type(param: Any) -> None:
    """Typer lists an argument in help as ``NAME <str>`` whatever its metavar; drop the type for one param."""
    if tested("typer") and hasattr(param, "display_type_rich"):
        param.display_type_rich = lambda ctx: None



def app_routes(app: Any) -> list[tuple[str, Any]]:
    """(full path, route) for every route of a FastAPI ``app``, included routers' too.

    FastAPI from 0.16x keeps an included router nested and walks it with ``routing.iter_route_contexts``;
    older ones flattened included routes into ``app.router.routes``. Outside the tested range the walker is
    still used when it is there (missing a route here would hide it from the permission check).
    """
    from fastapi import routing

    tested("fastapi")
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        return [(getattr(r, "path", ""), r) for r in app.router.routes]
    return [(ctx.path or getattr(ctx.original_route, "path", ""), ctx.original_route)
            for ctx in contexts(app.router.routes)]
