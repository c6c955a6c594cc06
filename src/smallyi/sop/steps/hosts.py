"""Steps that run on hosts (exec, script, template, file): commands are archived tasks with live output;
``template`` and ``file`` steps write through the engine's file transfer (``files``).

The target comes from the step, else the SOP, else the run (``--group``/``--hosts``/``--label``);
templated parts render first (``hosts: "{{ .matched_hosts }}"``), and a target that renders empty
skips the step. The starter's rights are checked on the hosts (``sop.run`` within their groups),
and the command policy applies as for their role; a command it holds for approval waits for the
decision (``held``). A retry runs again only on the hosts that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from typing import Any

from smallyi.auth.gate import Held
from smallyi.auth.rbac import EVERY_HOST, Perm
from smallyi.errors import InputError, SmallYiError
from smallyi.execution.wire import Archived
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import Selector
from smallyi.sop import context
from smallyi.sop.context import HostRow
from smallyi.sop.shellbind import check_text
from smallyi.sop.statuses import SopStepStatus
from smallyi.sop.steps import files
from smallyi.sop.steps.base import Outcome, StepCall
from smallyi.sop.steps.commands import exec_command, script_step
from smallyi.sop.steps.held import NotApproved, gated
from smallyi.tasks.queries import ResultFilter
from smallyi.tasks.service import Queued, TaskRequest
from smallyi.types import HostStatus

MAX_HOSTS = 100_000


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p for p in str(value).replace(",", " ").split() if p]


def target_of(call: StepCall) -> Selector | None:
    """The step's selector, rendered; None when it renders empty (the step is skipped)."""
    raw: Mapping[str, Any] | None = call.step.target or call.spec.sop.target or call.spec.target
    if not raw:
        raise InputError(f"step {call.step.id} runs on hosts but has no target: give it target:, give the SOP "
                         "one, or start the run with --group / --hosts / --label", field="target")
    group = str(call.value(raw["group"])).strip() if raw.get("group") else None
    hosts: list[str] = []
    for item in raw.get("hosts", []):
        hosts += _names(call.value(item) if "{{" in item else item)
    labels = {k: call.render(v) for k, v in dict(raw.get("labels", {})).items()}
    if not group and not hosts and not labels:
        return None
    return Selector(group=group or None, hosts=tuple(dict.fromkeys(hosts)), labels=labels)


def _host_info(h: HostSpec) -> dict[str, Any]:
    """What a file step's templates read as ``.host`` (part of their expression context)."""
    return {"name": h.name, "address": h.address, "port": h.port, "user": h.user, "labels": dict(h.labels),
            "groups": list(h.groups)}


def command_of(call: StepCall) -> str:
    """The command an exec or script step sends: its values pinned on the first line, referenced in the
    text (``shellbind``); InputError, before anything is sent, for a value that cannot go there."""
    p, decls = call.step.params, call.spec.sop.var_decls
    if call.step.type == "exec":
        return exec_command(p["cmd"], call.ctx, decls)
    args = []
    for i, a in enumerate(p.get("args", [])):
        text = call.render(a)
        if "{{" in a:
            check_text(text, f"args[{i + 1}] {a}")
        args.append(text)
    return script_step(p["script"], call.ctx, decls, p.get("interpreter", "sh"), args)


def _commands(call: StepCall, hosts: list[HostSpec]) -> list[tuple[list[str], str]]:
    """(host names, command) pairs of an exec or script step."""
    return [([h.name for h in hosts], command_of(call))]


async def run(call: StepCall) -> Outcome:
    deps, spec = call.deps, call.spec
    selector = target_of(call)
    if selector is None:
        return Outcome(SopStepStatus.SKIPPED, {"hosts": {}, "host_names": []},
                       "the target rendered empty: no hosts to run on")
    if call.previous and call.previous.get("failed_hosts"):
        selector = Selector(hosts=tuple(call.previous["failed_hosts"]))
    hosts = await deps.inventory.resolve(selector)
    spec.access.check_hosts(Perm.SOP_RUN, [(h.name, h.permission_groups) for h in hosts])
    try:
        if call.step.type in ("template", "file"):
            return _outcome(call, await files.push(call, hosts, _host_info), [])
        return await _run_commands(call, hosts)
    except NotApproved as exc:
        return Outcome(exc.status, {}, exc.message)


async def _run_commands(call: StepCall, hosts: list[HostSpec]) -> Outcome:
    deps, spec = call.deps, call.spec
    jobs = _commands(call, hosts)
    timeout = call.step.timeout
    concurrency = call.step.params.get("concurrency")
    ids: list[int] = []
    for names, command in jobs:
        def forward(event: Archived, _step: str = call.step.id) -> None:
            if spec.listener is not None:
                spec.listener(_step, event)

        def submit(approved_by: str, names: list[str] = names, command: str = command,
                   forward: Any = forward) -> Awaitable[Queued | Held]:
            return deps.tasks.submit(
                TaskRequest(Selector(hosts=tuple(names)), command, timeout=timeout, concurrency=concurrency),
                spec.caller("sop-command"),
                listener=forward, approved_by=approved_by)

        try:
            task_id = (await gated(call, submit)).task_id
        except NotApproved:
            for t in ids:  # the jobs already started stop with the step
                with contextlib.suppress(SmallYiError):
                    await deps.tasks.cancel(t, user=spec.task_user)
            raise
        ids.append(task_id)
        call.task_ids.append(task_id)
        await call.emit("step.task", {"task_id": task_id, "hosts": len(names), "attempt": call.attempt})
    await _wait(call, ids)
    rows: list[HostRow] = []
    for task_id in ids:
        # the runner reads back its own step's tasks (the run was checked against sop.run's groups)
        results, _ = await deps.archive.results(ResultFilter(task=task_id), scope=EVERY_HOST, limit=MAX_HOSTS,
                                                offset=0)
        rows += [{"host": r.host_name, "status": HostStatus(r.status), "exit_code": r.exit_code, "stdout": r.stdout,
                  "stderr": r.stderr, "reason": r.reason} for r in results]
    return _outcome(call, rows, ids)


def _outcome(call: StepCall, rows: list[HostRow], ids: list[int]) -> Outcome:
    """The step's result from its hosts' rows (merged with an earlier attempt's on a retry)."""
    hosts = context.host_result(rows)
    if call.previous:
        hosts = context.merge_host_results(call.previous, hosts)
    task_ids = [*call.previous.get("task_ids", []), *ids] if call.previous else ids
    failed = hosts["failed_hosts"]
    reason = ""
    if failed:
        detail = "; ".join(f"{h}: {hosts['hosts'][h]['status']} {hosts['hosts'][h]['reason']}".strip()
                           for h in failed[:5])
        reason = f"{len(failed)} of {len(hosts['hosts'])} host(s) did not succeed ({detail})"
    return Outcome(hosts["status"], {**hosts, "task_id": ids[-1] if ids else None, "task_ids": task_ids}, reason)


async def _wait(call: StepCall, ids: list[int]) -> None:
    """Wait for the tasks; when the run is cancelled, cancel them and wait for them to stop."""
    tasks = call.deps.tasks

    async def all_done() -> None:
        for t in ids:
            await tasks.wait(t)

    waiter: asyncio.Task[None] = asyncio.ensure_future(all_done())
    stopper: asyncio.Task[bool] = asyncio.ensure_future(call.cancel.wait())
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            for t in ids:
                with contextlib.suppress(SmallYiError):  # it may have just finished
                    await tasks.cancel(t, user=call.spec.task_user)
            await waiter
    finally:
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
