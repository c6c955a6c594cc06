"""``template`` and ``file`` steps: content rendered per host and written through the engine's file transfer.

The same transfer as GitOps (``engine.put_files`` over SFTP, or the local connector): each file goes
to a temporary file beside ``dest``, gets its owner and mode, and is renamed over ``dest``, so a
reader never sees half a file, and size is not bounded by a command's length. The target, rights
and retries are those of every host step (``hosts``); each host's line (``wrote ... (N bytes,
sha256 ...)`` or why not) goes to the live output, and the step's result has the usual per-host
fields. No task is archived for a file push: the run's events and step result record it.

The command policy judges each write as the command it stands for (``cat > DEST``, then ``chmod`` /
``chown`` when asked), under the starter's role, before anything is written: a deny rule on
``> /etc/*`` refuses the step, an allow list needs ``> DEST`` allowed, an approval rule holds the
step until another user decides (``held``).
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Awaitable
from typing import Any

from smallyi.auth.gate import Held
from smallyi.errors import InputError
from smallyi.execution import wire
from smallyi.execution.files import DEFAULT_MODE, FilePut, HostFiles, check_path
from smallyi.execution.transfer import TransferOptions
from smallyi.inventory.hosts import HostSpec
from smallyi.policy.rules import Verdict
from smallyi.sop import context
from smallyi.sop.context import HostRow
from smallyi.sop.steps.base import StepCall
from smallyi.sop.steps.held import gated
from smallyi.timestamps import from_unix
from smallyi.types import HostStatus

#: the largest file a step writes (rendered templates are held in memory per distinct content)
MAX_FILE = 64 * 1024 * 1024


def planned(call: StepCall, hosts: list[HostSpec], host_info: Any) -> dict[str, tuple[str, bytes]]:
    """Each host's (dest, content), rendered with the host in ``.host``; InputError naming a bad one."""
    step, p = call.step, call.step.params
    out: dict[str, tuple[str, bytes]] = {}
    for h in hosts:
        hctx = context.for_host(call.ctx, h.name, host_info(h))
        dest = call.render(p["dest"], ctx=hctx)
        try:
            check_path(dest)
        except InputError as exc:
            raise InputError(f"dest rendered to {dest!r} for {h.name}: {exc.message}", field="dest") from None
        content = (call.render(p["content"], ctx=hctx) if step.type == "template" else p["content"]).encode()
        if len(content) > MAX_FILE:
            raise InputError(f"content for {dest} on {h.name} is {len(content)} bytes; a step writes at most "
                             f"{MAX_FILE // (1024 * 1024)} MiB", field="content")
        out[h.name] = (dest, content)
    return out


def as_command(dest: str, mode: int | None, owner: str) -> str:
    """The shell command a write stands for, as the command policy judges it."""
    q = shlex.quote
    parts = [f"cat > {q(dest)}", f"chmod {DEFAULT_MODE if mode is None else mode:04o} {q(dest)}"]
    if owner:
        parts.append(f"chown {q(owner)} {q(dest)}")
    return " && ".join(parts)


async def _judge(call: StepCall, hosts: list[HostSpec], files: dict[str, tuple[str, bytes]]) -> None:
    """Run each distinct write past the command policy: PolicyDenied stops the step, a write held for
    approval waits for the decision (``held``)."""
    gate, spec, p = call.deps.tasks.gate, call.spec, call.step.params
    if gate is None:
        return
    by_dest: dict[str, list[HostSpec]] = {}
    for h in hosts:
        by_dest.setdefault(files[h.name][0], []).append(h)
    for dest, where in by_dest.items():
        def check(approved_by: str, dest: str = dest, where: list[HostSpec] = where) -> Awaitable[Verdict | Held]:
            assert gate is not None
            return gate.check(as_command(dest, p.get("mode"), p.get("owner") or ""), where, spec.caller("sop-file"),
                              approved_by=approved_by, request={"target": {"hosts": [h.name for h in where]}})

        await gated(call, check)


def _line(dest: str, content: bytes) -> str:
    return f"wrote {dest} ({len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()[:16]})"


async def push(call: StepCall, hosts: list[HostSpec], host_info: Any) -> list[HostRow]:
    """Write each host's file; one result row per host, as a command's would be (``host_result`` reads them)."""
    p, spec = call.step.params, call.spec
    files = planned(call, hosts, host_info)
    await _judge(call, hosts, files)
    mode = p.get("mode")
    batch = {h: [FilePut(files[h.name][0], files[h.name][1], owner=p.get("owner") or "",
                         mode=DEFAULT_MODE if mode is None else mode)] for h in hosts}
    await call.emit("step.push", {"hosts": len(hosts), "files": len({d for d, _ in files.values()}),
                                  "bytes": sum(len(c) for _, c in files.values()), "attempt": call.attempt})

    def done(hf: HostFiles) -> None:
        if spec.listener is None:
            return
        dest, content = files[hf.host]
        ok = hf.ok
        text = _line(dest, content) if ok else f"{hf.status.value}: {hf.reason}"
        spec.listener(call.step.id, wire.line(hf.host, "stdout" if ok else "stderr", text, from_unix(time.time())))

    concurrency = p.get("concurrency") or 0
    got = await call.deps.tasks.engine.put_files(batch, TransferOptions(
        concurrency=concurrency, timeout=call.step.timeout or 0.0, cancel=call.cancel, on_done=done))
    rows: list[HostRow] = []
    for h in hosts:
        hf = got[h.name]
        dest, content = files[h.name]
        if hf.ok:
            rows.append({"host": h.name, "status": HostStatus.SUCCESS, "exit_code": 0,
                         "stdout": _line(dest, content), "stderr": "", "reason": ""})
        else:
            # one file failing on a host that answered: the host's part failed
            status = HostStatus.FAILED if hf.status == HostStatus.SUCCESS else hf.status
            rows.append({"host": h.name, "status": status, "exit_code": None, "stdout": "",
                         "stderr": hf.reason, "reason": hf.reason})
    return rows
