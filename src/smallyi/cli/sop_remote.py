"""``small-yi sop run ... --server URL``: start a SOP run on a running server and follow it live.

The run is started through the API (a stored SOP by name, or a file's YAML inline), then its event
stream is followed (step starts and ends, retries, approvals, tickets) and, for every task a step
starts, that task's stream too, so host output arrives as ``[step][host] line`` as it does in-process.
Ctrl-C asks the server to cancel the run. Uses the same client as ``small-yi run --server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

from smallyi.cli.client import Client
from smallyi.cli.termsafe import safe
from smallyi.sop.statuses import SopRunStatus


async def remote_sop_run(server: str, token: str | None, *, name: str | None, source: str | None,
                         body: dict[str, Any], as_json: bool, on_event: Any, on_preview: Any,
                         on_summary: Any) -> tuple[str, bool]:
    """Start and follow one run; returns (final status, interrupted). A dry run prints its preview."""
    async with Client(server, token) as c:
        if name is not None:
            started = await c.call("POST", f"/api/v1/sops/{name}/runs", json=body)
        else:
            started = await c.call("POST", "/api/v1/sop-runs", json={**body, "source": source})
        if body.get("dry_run"):
            on_preview(started)
            return SopRunStatus.SUCCESS, False  # nothing ran, nothing failed
        run_id = int(started["id"])
        followers: list[asyncio.Task[Any]] = []

        def event(e: dict[str, Any]) -> None:
            if not as_json:
                on_event(run_id, e)
            if e["kind"] == "step.task" and not as_json:
                task_id = int(e["data"]["task_id"])
                followers.append(asyncio.ensure_future(c.stream(task_id, _lines(e["step"]))))

        loop = asyncio.get_running_loop()
        interrupted = False
        cancels: list[asyncio.Task[Any]] = []

        def on_sigint() -> None:
            nonlocal interrupted
            interrupted = True
            cancels.append(loop.create_task(c.call("POST", f"/api/v1/sop-runs/{run_id}/cancel")))

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            if not as_json:
                print(f"SOP run {run_id} started on {c.base}", file=sys.stderr, flush=True)
            end = await c.follow(f"/api/v1/sop-runs/{run_id}/stream", event, what=f"SOP run {run_id}")
            for f in followers:  # the tasks ended before their step did: their streams end at once
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(f, timeout=10)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            for f in followers:
                f.cancel()
            for t in cancels:
                with contextlib.suppress(Exception):
                    await t
        run = await c.call("GET", f"/api/v1/sop-runs/{run_id}")
        status = str(end.get("run", {}).get("status") or run["status"])
        steps = run.pop("steps", [])
        for k in ("approvals", "tickets"):
            run.pop(k, None)
        on_summary(run, steps)
        return status, interrupted


def _lines(step: str) -> Any:
    def write(w: dict[str, Any]) -> None:
        if w.get("stream") in ("stdout", "stderr"):
            mark = "!" if w["stream"] == "stderr" else ""
            sys.stdout.write(f"[{safe(step)}][{safe(w['host'])}]{mark} {safe(w['text'])}\n")
            sys.stdout.flush()

    return write
