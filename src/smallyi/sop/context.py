"""What expressions see: step results, variables, the run, and the step before's fields. Pure.

A host step's result aggregates its hosts: ``output`` is every host's stdout joined in host-name
order (one host: exactly its stdout), ``hosts`` holds each host's own result, ``ok_hosts`` and
``failed_hosts`` list names. Outputs are bounded so a run's record stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from smallyi.sop.statuses import SopStepStatus
from smallyi.types import HostStatus

#: text kept per host in a step result, and in an aggregated output
MAX_HOST_TEXT = 64 * 1024
MAX_TEXT = 1024 * 1024
TRUNCATED = "\n... [truncated]"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED


class HostRow(TypedDict):
    """How one host's part of a step ended: a task's result row, or a file push's."""

    host: str
    status: HostStatus
    exit_code: int | None
    stdout: str
    stderr: str
    reason: str


class HostOutcome(TypedDict):
    """One host's fields in a host step's result (``.hosts.<name>``)."""

    status: HostStatus
    exit_code: int | None
    output: str
    stdout: str
    stderr: str
    reason: str


class HostsResult(TypedDict):
    """A host step's result over its hosts (the runner adds ``task_id`` and ``task_ids``)."""

    status: SopStepStatus
    #: every host's stdout joined in host-name order
    output: str
    stdout: str
    stderr: str
    #: the first non-zero exit code; 0 when every host exited 0; None when none did or there are none
    exit_code: int | None
    hosts: dict[str, HostOutcome]
    host_names: list[str]
    ok_hosts: list[str]
    failed_hosts: list[str]


def host_result(rows: Iterable[HostRow]) -> HostsResult:
    """Aggregate per-host rows; the step succeeds when it had hosts and each of them succeeded."""
    hosts: dict[str, HostOutcome] = {}
    for r in sorted(rows, key=lambda r: str(r["host"])):
        out = clip(str(r.get("stdout") or ""), MAX_HOST_TEXT)
        hosts[str(r["host"])] = {
            "status": r["status"], "exit_code": r.get("exit_code"), "output": out, "stdout": out,
            "stderr": clip(str(r.get("stderr") or ""), MAX_HOST_TEXT), "reason": r.get("reason") or "",
        }
    ok = [h for h, v in hosts.items() if v["status"] == HostStatus.SUCCESS]
    failed = [h for h, v in hosts.items() if v["status"] != HostStatus.SUCCESS]
    output = clip("\n".join(v["output"] for v in hosts.values() if v["output"]), MAX_TEXT)
    stderr = clip("\n".join(v["stderr"] for v in hosts.values() if v["stderr"]), MAX_TEXT)
    codes = [v["exit_code"] for v in hosts.values()]
    exit_code = next((c for c in codes if c not in (0, None)), 0 if codes and all(c == 0 for c in codes) else None)
    return {
        "status": SopStepStatus.SUCCESS if hosts and not failed else SopStepStatus.FAILED,
        "output": output, "stdout": output,
        "stderr": stderr, "exit_code": exit_code, "hosts": hosts, "host_names": list(hosts),
        "ok_hosts": ok, "failed_hosts": failed,
    }


def merge_host_results(earlier: Mapping[str, Any], later: HostsResult) -> HostsResult:
    """A retry's result over the hosts that failed before, merged with the hosts that had succeeded
    (``earlier``: the previous attempt's result, which has no hosts if that attempt failed before them)."""
    rows: list[HostRow] = []
    for name, v in {**earlier.get("hosts", {}), **later["hosts"]}.items():
        rows.append({"host": name, "status": v["status"], "exit_code": v.get("exit_code"),
                     "stdout": v.get("stdout") or "", "stderr": v.get("stderr") or "",
                     "reason": v.get("reason") or ""})
    return host_result(rows)


def build(*, results: Mapping[str, Mapping[str, Any]], dot: str | None, vars: Mapping[str, Any],
          env: Mapping[str, Any], environment: str, run: Mapping[str, Any],
          extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The context of one step: ``dot`` names the step whose fields are also read directly (``.output``)."""
    ctx: dict[str, Any] = {}
    if dot is not None and dot in results:
        ctx.update(results[dot])
    ctx.update({"steps": dict(results), "vars": dict(vars), "env": dict(env), "environment": environment,
                "run": dict(run)})
    if extra:
        ctx.update(extra)
    return ctx


def for_host(ctx: Mapping[str, Any], host: str, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``ctx`` seen from one host: the previous step's fields are that host's, ``.host`` describes it."""
    out = dict(ctx)
    per = (ctx.get("hosts") or {}).get(host) if isinstance(ctx.get("hosts"), Mapping) else None
    if isinstance(per, Mapping):
        out.update(per)
    out["host"] = {"name": host, **(info or {})}
    return out
