"""What expressions see: step results, variables, the run, and the step before's fields. Pure.

A host step's result aggregates its hosts: ``output`` is every host's stdout joined in host-name
order (one host: exactly its stdout), ``hosts`` holds each host's own result, ``ok_hosts`` and
``failed_hosts`` list names. Outputs are bounded so a run's record stays small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: text kept per host in a step result, and in an aggregated output
MAX_HOST_TEXT = 64 * 1024
MAX_TEXT = 1024 * 1024
TRUNCATED = "\n... [truncated]"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED


def host_result(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Aggregate per-host rows (``host``, ``status``, ``exit_code``, ``stdout``, ``stderr``, ``reason``)."""
    hosts: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: str(r["host"])):
        out = clip(str(r.get("stdout") or ""), MAX_HOST_TEXT)
        hosts[str(r["host"])] = {
            "status": r["status"], "exit_code": r.get("exit_code"), "output": out, "stdout": out,
            "stderr": clip(str(r.get("stderr") or ""), MAX_HOST_TEXT), "reason": r.get("reason") or "",
        }
    ok = [h for h, v in hosts.items() if v["status"] == "success"]
    failed = [h for h, v in hosts.items() if v["status"] != "success"]
    output = clip("\n".join(v["output"] for v in hosts.values() if v["output"]), MAX_TEXT)
    stderr = clip("\n".join(v["stderr"] for v in hosts.values() if v["stderr"]), MAX_TEXT)
    codes = [v["exit_code"] for v in hosts.values()]
    exit_code = next((c for c in codes if c not in (0, None)), 0 if codes and all(c == 0 for c in codes) else None)
    return {
        "status": "success" if hosts and not failed else "failed", "output": output, "stdout": output,
        "stderr": stderr, "exit_code": exit_code, "hosts": hosts, "host_names": list(hosts),
        "ok_hosts": ok, "failed_hosts": failed,
    }


def merge_host_results(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """A retry's result over the hosts that failed before, merged with the hosts that had succeeded."""
    rows = []
    for name, v in {**earlier.get("hosts", {}), **later.get("hosts", {})}.items():
        rows.append({"host": name, **v})
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
