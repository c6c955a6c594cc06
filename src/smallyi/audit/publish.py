"""The external anchor sent off the machine: to syslog and/or a webhook, on a schedule (server only).

The anchor file sits beside the audit key, so whoever can rewrite it can also read the key. A copy in a
central syslog or a ticket or chat system, which that person cannot reach, is what still shows a trail
that was cut back with the file: ``audit verify`` names the anchor it checked, to compare with the copies.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import socket
from typing import Any

from smallyi.audit.anchor import Anchor, AnchorFile
from smallyi.config import AuditSettings

log = logging.getLogger(__name__)


def line(a: Anchor, *, where: str) -> str:
    """The anchor as one syslog line (every field, so a copy can be checked with the audit key)."""
    return (f"audit anchor seq={a.seq} hash={a.hash} mac={a.mac} mac_from={a.mac_from} at={a.at} key={a.key} "
            f"sig={a.sig} file={where}")


def payload(a: Anchor, *, where: str) -> dict[str, Any]:
    """The webhook's JSON body."""
    return {"kind": "small-yi.audit.anchor", "host": socket.gethostname(), "file": where, "anchor": a.to_dict()}


def _syslog_address(target: str) -> str | tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if target.startswith("/") or not sep or not port.isdigit():
        return target
    return host.strip("[]"), int(port)


def send_syslog(target: str, text: str) -> None:
    """One message (facility authpriv, severity warning) to a socket path or ``HOST:PORT`` over UDP."""
    handler = logging.handlers.SysLogHandler(address=_syslog_address(target),
                                             facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV)
    handler.ident = "small-yi: "
    try:
        record = logging.makeLogRecord({"msg": text, "levelno": logging.WARNING, "levelname": "WARNING"})
        handler.emit(record)
    finally:
        handler.close()


async def send_webhook(url: str, body: dict[str, Any], *, timeout: float = 10.0) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=timeout) as client:
        r = await client.post(url, json=body)
        r.raise_for_status()


async def run(anchor: AnchorFile, cfg: AuditSettings) -> None:
    """Send the anchor when the server starts and then every ``anchor_interval``, whenever it has moved; a
    failed send is logged and tried again at the next interval."""
    where = str(anchor.path)
    sent: Anchor | None = None
    while True:
        try:
            a = await asyncio.to_thread(anchor.read)
            if a is not None and a != sent:
                if cfg.anchor_syslog:
                    await asyncio.to_thread(send_syslog, cfg.anchor_syslog, line(a, where=where))
                if cfg.anchor_webhook:
                    await send_webhook(cfg.anchor_webhook, payload(a, where=where))
                sent = a
        except Exception as exc:
            log.warning("the audit anchor could not be sent (%s); it is tried again in %gs", exc, cfg.anchor_interval)
        await asyncio.sleep(cfg.anchor_interval)
