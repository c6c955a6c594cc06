"""Steps that wait or talk to people: ``wait``, ``approval`` (across restarts) and ``notify``."""

from __future__ import annotations

import asyncio
import contextlib
import time

from smallyi.errors import NotFound
from smallyi.notify.base import Message
from smallyi.sop.statuses import SopStepStatus
from smallyi.sop.steps.base import Outcome, StepCall
from smallyi.timestamps import iso
from smallyi.types import ApprovalStatus

#: how often a waiting approval looks at its row (decisions may come from another process)
POLL = 1.0


async def run_wait(call: StepCall) -> Outcome:
    """Sleep ``duration``; a run resumed after a restart waits only what remains."""
    duration = float(call.step.params["duration"])
    remaining = duration - max(0.0, time.time() - call.started_at) if call.started_at else duration
    await _sleep_or_cancel(call, max(0.0, remaining))
    if call.cancel.is_set():
        return Outcome(SopStepStatus.CANCELLED, {"waited": duration - remaining}, "the run was cancelled")
    return Outcome(SopStepStatus.SUCCESS, {"waited": duration})


async def _sleep_or_cancel(call: StepCall, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(call.cancel.wait(), timeout=seconds)


async def run_approval(call: StepCall) -> Outcome:
    """Wait for a person's decision, recorded in the database (so it survives a restart)."""
    p, spec, approvals = call.step.params, call.spec, call.deps.step_approvals
    message = call.render(p["message"]) if p.get("message") else f"approve step {call.step.id} of run {spec.run_id}"
    ttl = call.step.timeout or call.deps.settings.sop.approval_timeout
    row = await approvals.ask(spec.run_id, call.step.id, message=message, approvers=p.get("approvers", []),
                              requested_by=spec.started_by, ttl=ttl)
    if row.status == ApprovalStatus.PENDING:
        await call.emit("step.waiting", {"approval_id": row.id, "message": row.message,
                                         "approvers": list(row.approvers),
                                         "expires_at": iso(row.expires_at)})
    while row.status == ApprovalStatus.PENDING:
        if row.expires_at.timestamp() <= time.time():
            await approvals.expire(row.id)
            return Outcome(SopStepStatus.FAILED, {"decision": ApprovalStatus.EXPIRED},
                           f"no decision on approval {row.id} before it expired")
        await _sleep_or_cancel(call, POLL)
        if call.cancel.is_set():
            await approvals.expire(row.id, ApprovalStatus.CANCELLED)
            return Outcome(SopStepStatus.CANCELLED, {"decision": ApprovalStatus.CANCELLED}, "the run was cancelled")
        row = await approvals.get(row.id)
    result = {"decision": row.status, "decided_by": row.decided_by, "comment": row.comment}
    if row.status == ApprovalStatus.APPROVED:
        return Outcome(SopStepStatus.SUCCESS, result)
    by = f" by {row.decided_by}" if row.decided_by else ""
    return Outcome(SopStepStatus.FAILED, result,
                   f"approval {row.id} {row.status}{by}" + (f": {row.comment}" if row.comment else ""))


async def run_notify(call: StepCall) -> Outcome:
    """Send to channels; a failed delivery is recorded and reported, but does not fail the run."""
    p = call.step.params
    notify = call.deps.notify
    text = call.render(p["message"])
    title = call.render(p["title"]) if p.get("title") else f"[small-yi] {call.spec.sop.name or 'SOP'} " \
        f"#{call.spec.run_id}: {call.step.id}"
    msg = Message(title=title, text=text, status="info", event="sop_step",
                            data={"run_id": call.spec.run_id, "step": call.step.id})
    if notify is None:
        return Outcome(SopStepStatus.SUCCESS, {"delivered": False, "channels": {}},
                       "notifications are not set up here")
    outcomes: dict[str, str] = {}
    for channel in p["channels"]:
        try:
            d = await notify.send_now(channel, msg, key=f"sop_run:{call.spec.run_id}:{call.step.id}:"
                                      f"{call.attempt}:{channel}", subject=f"SOP run {call.spec.run_id}")
            outcomes[channel] = d["status"] if d["status"] == "sent" else f"failed: {d['last_error']}"
        except NotFound as exc:
            outcomes[channel] = f"failed: {exc.message}"
    delivered = all(v == "sent" for v in outcomes.values())
    reason = "" if delivered else "; ".join(f"{c} {v}" for c, v in outcomes.items() if v != "sent")
    if not delivered:
        await call.emit("step.warning", {"message": f"notification not delivered: {reason}"})
    return Outcome(SopStepStatus.SUCCESS, {"delivered": delivered, "channels": outcomes}, reason)
