"""Notify on GitOps syncs, rollbacks and drift checks that end (``gitops.notify``): the rule, the data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smallyi.config import GitOpsNotifyRule
from smallyi.notify import templates
from smallyi.notify.service import NotifyService
from smallyi.notify.tasks import wanted

#: file outcomes worth naming in a message (changed and unchanged files are counted, not listed)
_NAMED = ("failed", "restored", "drifted", "missing")


def sync_data(record: Mapping[str, Any]) -> dict[str, Any]:
    """The template variables of a finished sync record (``SyncStore.get``)."""
    problems = [{"host": h["host"], "path": f["path"], "status": f["status"], "reason": f["reason"]}
                for h in record.get("hosts", []) for f in h.get("files", []) if f["status"] in _NAMED]
    return {"sync_id": record["id"], "kind": record["kind"], "status": record["status"],
            "reason": record["reason"], "commit": record["commit"], "short": record["short"],
            "branch": record["branch"], "author": record["author"], "message": record["message"],
            "requested_by": record["requested_by"], "trigger": record["trigger"],
            "counts": {k: v for k, v in record.get("counts", {}).items() if isinstance(v, int)},
            "problems": problems[:20], "more_problems": max(0, len(problems) - 20)}


async def notify_sync(service: NotifyService, record: Mapping[str, Any], rule: GitOpsNotifyRule, *,
                      configured: Mapping[str, str]) -> int:
    """Queue the message the rule asks for about a finished sync; how many were queued."""
    event = wanted(record["status"], rule.on)
    if event is None or not rule.channels or record["kind"] not in rule.kinds:
        return 0
    msg = templates.message("gitops_sync", sync_data(record), status=event, configured=configured)
    return len(await service.notify(rule.channels, msg, key=f"gitops_sync:{record['id']}:{event}",
                                    subject=f"GitOps {record['kind']} {record['id']}"))
