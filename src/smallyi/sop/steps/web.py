"""``http`` steps: call a URL from the server (not from hosts), check the status, keep the answer."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smallyi.sop.context import MAX_HOST_TEXT, clip
from smallyi.sop.statuses import SopStepStatus
from smallyi.sop.steps.base import Outcome, StepCall

DEFAULT_TIMEOUT = 30.0


async def run(call: StepCall) -> Outcome:
    p = call.step.params
    url = call.render(p["url"])
    headers = {k: call.render(v) for k, v in p.get("headers", {}).items()}
    kwargs: dict[str, Any] = {"headers": headers}
    if "json" in p:
        kwargs["json"] = call.tree(p["json"])
    elif "body" in p:
        kwargs["content"] = call.render(p["body"]).encode()
    timeout = call.step.timeout or DEFAULT_TIMEOUT
    try:
        async with httpx.AsyncClient(transport=call.deps.http_transport, timeout=timeout) as client:
            resp = await client.request(p.get("method", "GET"), url, **kwargs)
    except httpx.HTTPError as exc:
        return Outcome(SopStepStatus.FAILED, {"status_code": None},
                       f"{p.get('method', 'GET')} {url}: {type(exc).__name__} {exc}")
    text = clip(resp.text, MAX_HOST_TEXT)
    try:
        parsed = json.loads(resp.content) if resp.content else None
    except ValueError:
        parsed = None
    expect = p.get("expect_status") or ()
    ok = resp.status_code in expect if expect else 200 <= resp.status_code < 300
    result = {"status_code": resp.status_code, "body": text, "output": text, "json": parsed,
              "headers": dict(resp.headers)}
    reason = "" if ok else (f"{p.get('method', 'GET')} {url} answered {resp.status_code}, expected "
                            f"{', '.join(map(str, expect)) if expect else '2xx'}")
    return Outcome(SopStepStatus.SUCCESS if ok else SopStepStatus.FAILED, result, reason)
