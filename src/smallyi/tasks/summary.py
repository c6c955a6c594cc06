"""A task in brief: its hosts counted by status, why the others did not succeed, and the hosts worth listing.

What ``small-yi run`` prints at the end (locally or with ``--server``) needs the counts and the distinct
reasons of the hosts that did not succeed (``tasks.reasons``), not every host's archived output: at 500
hosts, reading and sending all of them was most of the time between the last line and the prompt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from smallyi.auth.rbac import HostScope
from smallyi.storage.db import Database
from smallyi.storage.models import Result
from smallyi.tasks.queries import host_in_scope, result_dict
from smallyi.tasks.reasons import KEEP_HOSTS, Reasons
from smallyi.types import HostStatus

#: a task with at most this many hosts lists them all; a larger one lists those that did not succeed
LIST_ALL_UP_TO = 50


async def summarize(db: Database, task_id: int, *, scope: HostScope, list_all_up_to: int = LIST_ALL_UP_TO,
                    results: bool = True, hosts_per_reason: int = KEEP_HOSTS) -> dict[str, Any]:
    """``{"counts": {status: n}, "total": n, "reasons": [...], "listed": "all" | "not-success" | "none",
    "results": [...]}`` for the task's hosts in ``scope``.

    ``reasons``: each distinct status and reason of the hosts that did not succeed once, with how many
    hosts and the first ``hosts_per_reason`` of them (``tasks.reasons``). ``results``: ``result_dict``
    rows ordered by host name (none unless ``results``).
    """
    where = (Result.task_id == task_id, host_in_scope(Result.host_name, scope))
    reasons = Reasons(hosts_per_reason)
    async with db.session() as s:
        counts = {str(status): int(n) for status, n in (await s.execute(
            select(Result.status, func.count()).where(*where).group_by(Result.status))).all()}
        total = sum(counts.values())
        if any(status != HostStatus.SUCCESS.value for status in counts):
            failed = await s.execute(
                select(Result.host_name, Result.status, Result.reason, Result.address)
                .where(*where, Result.status != HostStatus.SUCCESS.value).order_by(Result.host_name))
            for host, status, reason, address in failed:
                reasons.add(host, status, reason, address)
        rows: list[Result] = []
        listed = "none"
        if results:
            q = select(Result).where(*where)
            listed = "all"
            if total > list_all_up_to:
                q = q.where(Result.status != HostStatus.SUCCESS.value)
                listed = "not-success"
            rows = list((await s.scalars(q.order_by(Result.host_name))).all())
    return {"counts": counts, "total": total, "reasons": reasons.groups(), "listed": listed,
            "results": [result_dict(r) for r in rows]}
