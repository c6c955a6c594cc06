"""Target options shared by ``run`` and ``logs``: --group, --hosts, --label."""

from __future__ import annotations

from typing import Annotated

import typer

from smallyi.inventory.hosts import parse_label
from smallyi.inventory.selectors import Selector

GroupOpt = Annotated[str | None, typer.Option("--group", "-g", help="run on this group")]
HostsOpt = Annotated[str | None, typer.Option("--hosts", help="comma-separated host names")]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="key=value; repeat for more")]


def selector(group: str | None, hosts: str | None, labels: list[str] | None) -> Selector:
    """The selector the flags describe; InputError if none was given or a label is malformed."""
    names = tuple(h.strip() for h in (hosts or "").split(",") if h.strip())
    return Selector(group=group or None, hosts=names, labels=dict(parse_label(x) for x in labels or []))
