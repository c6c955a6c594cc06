"""Which slot of a schedule to fire now, under its missed-run policy. Pure.

Slots come due between the last one handled and now. One noticed within ``grace`` of its time is
on time and fires. Older ones were missed (no scheduler ran): policy ``skip`` records them as
missed, ``run_once`` fires the latest of them once. Only one slot ever fires per check: a schedule
never fires a burst to catch up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from smallyi.schedules.cron import Cron

MISSED_POLICIES = ("skip", "run_once")
OVERLAP_POLICIES = ("skip", "allow")


@dataclass(frozen=True, slots=True)
class Due:
    #: the slot to fire now, if any
    fire: datetime | None
    #: slots passed over (not fired), oldest first
    missed: list[datetime] = field(default_factory=list)
    #: whether ``fire`` is a missed slot fired under ``run_once``
    late: bool = False


def due(cron: Cron, tz: ZoneInfo, *, last: datetime, now: datetime, grace: float, missed: str) -> Due:
    """What to do at ``now`` for slots after ``last``."""
    slots = cron.slots(last, now, tz)
    on_time = [s for s in slots if (now - s).total_seconds() <= grace]
    late = [s for s in slots if (now - s).total_seconds() > grace]
    if on_time:
        return Due(on_time[-1], late + on_time[:-1])
    if late and missed == "run_once":
        return Due(late[-1], late[:-1], late=True)
    return Due(None, late)
