"""``ticket`` steps and the ``if`` step's actions (``create_ticket``, ``notify``, ``fail``).

A ticket's affected hosts are, in order: the step's ``hosts:``, the hosts for which the ``if``
condition held, the hosts of the step before. The requester is whoever started the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smallyi.notify.base import Message
from smallyi.sop import context
from smallyi.sop.expr import compile_template
from smallyi.sop.statuses import SopStepStatus
from smallyi.sop.steps.base import Outcome, StepCall
from smallyi.tickets.service import TicketError


def _hosts(call: StepCall, spec: Mapping[str, Any], fallback: Sequence[str]) -> list[str]:
    if spec.get("hosts"):
        out: list[str] = []
        for item in spec["hosts"]:
            value = call.value(item)
            out += [str(v) for v in value] if isinstance(value, list) else \
                [p for p in str(value).replace(",", " ").split() if p]
        return out
    return list(fallback)


async def open_ticket(call: StepCall, spec: Mapping[str, Any], hosts: Sequence[str]) -> dict[str, Any]:
    """Open one ticket; TicketError when the ticket system fails."""
    tickets = call.deps.tickets
    if tickets is None:
        raise TicketError("tickets are not set up in this process")
    fields = call.tree(spec.get("fields", {}))
    extra = {"sop": call.spec.sop.name, "vars": dict(call.spec.vars), "env": dict(call.spec.env),
             "environment": call.spec.environment, "output": str(call.ctx.get("output", ""))[:4000],
             "fields": fields, **(fields if isinstance(fields, dict) else {})}
    return await tickets.create(
        spec["template"], requester=call.spec.started_by, hosts=list(hosts),
        sla=call.render(spec["sla"]) if spec.get("sla") else "",
        title=call.render(spec["title"]) if spec.get("title") else "",
        run_id=call.spec.run_id, step_id=call.step.id, extra=extra)


async def run_ticket(call: StepCall) -> Outcome:
    p = call.step.params
    hosts = _hosts(call, p, call.ctx.get("host_names") or [])
    try:
        t = await open_ticket(call, p, hosts)
    except TicketError as exc:
        return Outcome(SopStepStatus.FAILED, {"hosts": hosts}, exc.message)
    await call.emit("step.ticket", {"ticket_id": t["ticket_id"], "url": t["url"]})
    return Outcome(SopStepStatus.SUCCESS, {"ticket_id": t["ticket_id"], "ticket_url": t["url"], "hosts": hosts})


async def run_if(call: StepCall) -> Outcome:
    """Test the condition (and, per host of the step before, which hosts it holds for); act on it."""
    p = call.step.params
    cond = compile_template(p["condition"], bare=True)
    result = cond.test(call.ctx)
    per_host = call.ctx.get("hosts")
    matched = [h for h in per_host if cond.test(context.for_host(call.ctx, h))] \
        if isinstance(per_host, Mapping) else []
    actions = p["then"] if result else p["else"]
    done: list[dict[str, Any]] = []
    tickets: list[dict[str, Any]] = []
    out: dict[str, Any] = {"result": result, "matched_hosts": matched, "tickets": tickets, "actions": done}
    for action in actions:
        kind = action["action"]
        if kind == "create_ticket":
            hosts = _hosts(call, action, matched or call.ctx.get("host_names") or [])
            try:
                t = await open_ticket(call, action, hosts)
            except TicketError as exc:
                done.append({"action": kind, "ok": False, "error": exc.message})
                return Outcome(SopStepStatus.FAILED, out, exc.message)
            tickets.append({"ticket_id": t["ticket_id"], "url": t["url"], "hosts": hosts})
            done.append({"action": kind, "ok": True, "ticket_id": t["ticket_id"], "url": t["url"]})
            await call.emit("step.ticket", {"ticket_id": t["ticket_id"], "url": t["url"]})
        elif kind == "notify":
            ok = await _notify(call, action)
            done.append({"action": kind, "ok": ok})
        else:
            message = call.render(action["message"]) if action.get("message") else "the condition decided to stop"
            done.append({"action": kind, "ok": True, "message": message})
            return Outcome(SopStepStatus.FAILED, out, message)
    return Outcome(SopStepStatus.SUCCESS, out)


async def _notify(call: StepCall, action: Mapping[str, Any]) -> bool:
    notify = call.deps.notify
    if notify is None:
        return False
    title = call.render(action["title"]) if action.get("title") else \
        f"[small-yi] {call.spec.sop.name or 'SOP'} #{call.spec.run_id}: {call.step.id}"
    msg = Message(title=title, text=call.render(action["message"]), event="sop_step",
                  data={"run_id": call.spec.run_id, "step": call.step.id})
    ok = True
    for channel in action["channels"]:
        d = await notify.send_now(channel, msg, key=f"sop_run:{call.spec.run_id}:{call.step.id}:{channel}",
                                  subject=f"SOP run {call.spec.run_id}")
        ok = ok and d["status"] == "sent"
    return ok
