"""``sop`` steps: run another stored SOP as a child run and wait for it (depth-limited)."""

from __future__ import annotations

from smallyi.sop.statuses import SopRunStatus, SopStepStatus
from smallyi.sop.steps.base import Outcome, StepCall


async def run(call: StepCall) -> Outcome:
    p, spec = call.step.params, call.spec
    limit = call.deps.settings.sop.max_depth
    if spec.depth + 1 > limit:
        return Outcome(SopStepStatus.FAILED, {},
                       f"SOPs call each other deeper than sop.max_depth ({limit}); is there a loop?")
    if call.deps.call_sop is None:
        return Outcome(SopStepStatus.FAILED, {}, "calling SOPs is not set up in this process")
    variables = call.tree(p.get("vars", {}))
    child = await call.deps.call_sop(p["sop"], variables, spec.run_id, call.step.id, spec.depth + 1, call.cancel)
    await call.emit("step.child", {"run_id": child.run_id, "status": child.status})
    ok = child.status is SopRunStatus.SUCCESS
    return Outcome(SopStepStatus.SUCCESS if ok else SopStepStatus.FAILED, {"run_id": child.run_id, "steps": child.steps},
                   "" if ok else f"SOP run {child.run_id} {child.status}: {child.reason}")
