"""When a notification is sent, and a task's own ``notify`` value checked for shape. Pure and light:
``small-yi run --server --notify`` parses its flags with it without loading the database layer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smallyi.errors import InputError

#: the ``on`` values of a task's, a SOP's and a schedule's ``notify``
EVENTS = ("success", "failure", "finish")


def task_notify(channels: Iterable[str], on: Iterable[str] = ("failure",)) -> dict[str, Any]:
    """A task's own ``notify`` value, checked for shape: ``{"channels": [...], "on": [...]}``."""
    names = list(dict.fromkeys(c.strip() for c in channels if c.strip()))
    if not names:
        raise InputError("notify: give at least one channel", field="notify.channels")
    when = list(dict.fromkeys(o.strip() for o in on if o.strip())) or ["failure"]
    bad = [o for o in when if o not in EVENTS]
    if bad:
        raise InputError(f"notify on: {', '.join(map(repr, bad))} is not one of {', '.join(EVENTS)}",
                         field="notify.on")
    return {"channels": names, "on": when}
