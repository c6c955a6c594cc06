"""Why hosts did not succeed, once per distinct reason: "unreachable (480 hosts: ...): connect to ... timed out".

A task's summary lists each distinct (status, reason) once with how many hosts gave it and the first
few of them, not one row per host: 500 hosts behind the same dead network are one line. Reasons that
name the host's own address and port (``127.0.1.7:2222: connection refused``) differ per host, so they
are grouped by a template with the host's address (and port) replaced by ``<address>`` (``<port>``);
a group whose hosts all gave the very same text shows that text. Pure: rows in, groups out; used by
``tasks.summary`` (the API's summary, ``small-yi run``) and by ``small-yi tasks show`` as it pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: how a summary orders the statuses that did not succeed: the worst first (see ``small-yi run``'s exit status)
ORDER = ("unreachable", "timeout", "failed", "cancelled", "interrupted", "pending", "running")
#: host names a group keeps (the first ones by name); the count covers every host
KEEP_HOSTS = 10


def template(reason: str, address: str) -> str:
    """``reason`` with the host's own ``address`` (bracketed or not, with its ``:port`` if any) replaced by
    ``<address>`` (``<address>:<port>``), as whole words only."""
    if not address or address not in reason:
        return reason
    a = re.escape(address)
    edge = r"(?<![\w.:\[-])"
    if ":" in address:  # IPv6: a port only ever follows the bracketed form
        pattern = rf"\[{a}\](?::(\d+))?|{edge}{a}(?![\w.:-])"
    else:
        pattern = rf"{edge}\[?{a}\]?(?::(\d+))?(?![\w.-])"

    def sub(m: re.Match[str]) -> str:
        return "<address>:<port>" if m.group(1) else "<address>"

    return re.sub(pattern, sub, reason)


#: any ``address:port`` (a name, IPv4, or bracketed IPv6), for :func:`shape`
_HOST_PORT = re.compile(r"(?<![\w.:\[-])(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):\d+(?![\w.-])")


def shape(reason: str) -> str:
    """``reason`` with any ``address:port`` in it replaced by ``<address>:<port>``: for telling reasons
    apart where the host's address is not at hand (the live view); the summary uses :func:`template`."""
    return _HOST_PORT.sub("<address>:<port>", reason)


@dataclass
class Group:
    status: str
    template: str
    #: the first host's reason as it was: shown when every host of the group gave the same text
    example: str
    count: int = 0
    hosts: list[str] = field(default_factory=list)
    same: bool = True

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "reason", "count", "hosts"}``: ``reason`` the text shared by every host of the
        group, ``hosts`` the first :data:`KEEP_HOSTS` of them by name."""
        return {"status": self.status, "reason": self.example if self.same else self.template,
                "count": self.count, "hosts": list(self.hosts)}


class Reasons:
    """Hosts that did not succeed, added one at a time (in host-name order), grouped by status and reason."""

    def __init__(self, keep: int = KEEP_HOSTS) -> None:
        self.keep = keep
        self._groups: dict[tuple[str, str], Group] = {}

    def add(self, host: str, status: str, reason: str | None, address: str | None = "") -> None:
        if status == "success":
            return
        text = reason or ""
        key = (status, template(text, address or ""))
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = Group(status, key[1], text)
        g.count += 1
        g.same = g.same and text == g.example
        if len(g.hosts) < self.keep:
            g.hosts.append(host)

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Result rows as the archive gives them (``host``, ``status``, ``reason``, ``address``)."""
        for r in rows:
            self.add(r["host"], r["status"], r.get("reason"), r.get("address"))

    def groups(self) -> list[dict[str, Any]]:
        """The groups, worst status first, then the largest first (then by reason)."""
        def rank(g: Group) -> tuple[int, int, str]:
            s = ORDER.index(g.status) if g.status in ORDER else len(ORDER)
            return s, -g.count, g.template

        return [g.to_dict() for g in sorted(self._groups.values(), key=rank)]


def group(rows: list[dict[str, Any]], keep: int = KEEP_HOSTS) -> list[dict[str, Any]]:
    """The distinct reasons of ``rows`` (see :class:`Reasons`)."""
    r = Reasons(keep)
    r.add_rows(rows)
    return r.groups()
