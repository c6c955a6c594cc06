"""The ``script`` and standalone ``ticket`` step kinds, run in-process end to end.

Scripts run on the built-in ``local`` host (real commands on this machine); tickets go to the local
HTTP receiver of ``test_sop_runs`` (the same helpers and configuration).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_sop_runs import Env, make_env

from smallyi.auth.rbac import EVERY_HOST
from smallyi.tasks.queries import ResultFilter


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    yield e
    await e.auto.close()
    await e.rt.close()
    e.receiver.close()


# --- script -------------------------------------------------------------------------------------

async def test_script_step_output_is_archived_in_the_step_result(env: Env) -> None:
    """A multi-line script with arguments runs on the host; its stdout is the step's output, per host too,
    and the task it ran as is in the task archive with the same output."""
    src = """
steps:
  - id: s
    type: script
    interpreter: bash
    args: ["first arg", "it's"]
    script: |
      echo "args=$#"
      printf '[%s]\\n' "$@"
      echo "name=$0"
      echo "to stderr" >&2
"""
    _, status, _, s = await env.run(src, target={"hosts": ["local"]})
    assert status == "success", s["s"].reason
    expected = "args=2\n[first arg]\n[it's]\nname=sop-script"
    result = s["s"].result
    assert result["output"] == expected
    assert result["hosts"]["local"]["output"] == expected and result["hosts"]["local"]["exit_code"] == 0
    assert "to stderr" in result["hosts"]["local"]["stderr"]
    assert result["ok_hosts"] == ["local"] and result["task_id"] in s["s"].task_ids
    rows, _ = await env.rt.archive.results(ResultFilter(task=result["task_id"]), scope=EVERY_HOST, limit=10, offset=0)
    assert [(r.host_name, r.exit_code) for r in rows] == [("local", 0)]
    assert rows[0].stdout.rstrip("\n") == expected


async def test_script_step_nonzero_exit_fails_the_step_and_the_run(env: Env) -> None:
    """A script exiting 3 fails its step (exit code and output kept), the run fails naming the step and
    the host, and the step after it never runs."""
    src = """
steps:
  - id: s
    type: script
    script: |
      echo partial
      echo "broken" >&2
      exit 3
  - {id: after, type: exec, cmd: "echo should not run"}
"""
    _, status, reason, s = await env.run(src, target={"hosts": ["local"]})
    assert status == "failed"
    assert "step s failed" in reason and "local" in reason, reason
    assert s["s"].status == "failed" and "1 of 1 host(s) did not succeed" in s["s"].reason
    host = s["s"].result["hosts"]["local"]
    assert host["exit_code"] == 3 and host["output"] == "partial" and "broken" in host["stderr"]
    assert s["s"].result["failed_hosts"] == ["local"]
    assert s["after"].status == "skipped"


async def test_script_step_variables_with_shell_syntax_arrive_as_data(env: Env, tmp_path: Path) -> None:
    """A variable holding `$(touch ...)`, `; touch ...` or backticks, used in the script body and passed as
    an argument, reaches the script as text: no marker file is ever created."""
    subst, semi, tick = tmp_path / "subst", tmp_path / "semi", tmp_path / "tick"
    evil = f"$(touch {subst}); touch {semi} `touch {tick}`"
    src = """
vars: {evil: "x"}
steps:
  - id: s
    type: script
    args: ["{{ .vars.evil }}"]
    script: |
      echo body={{ .vars.evil }}
      printf 'arg=%s\\n' "$1"
"""
    _, status, _, s = await env.run(src, target={"hosts": ["local"]}, variables={"evil": evil})
    assert status == "success", s["s"].reason
    assert s["s"].result["output"] == f"body={evil}\narg={evil}"
    assert not subst.exists() and not semi.exists() and not tick.exists()


# --- ticket -------------------------------------------------------------------------------------

TICKET = """
name: disk-sop
steps:
  - id: t
    type: ticket
    template: disk-full-high
    sla: P2
    hosts: ["db1", "{{ .vars.extra }}"]
  - {id: after, type: exec, cmd: "echo opened {{ .steps.t.ticket_id }} {{ .steps.t.ticket_url }}"}
vars: {extra: h1}
"""


async def test_ticket_step_sends_the_rendered_template_and_records_the_ticket(env: Env) -> None:
    """A `ticket` step posts the template rendered with the run's requester, the step's SLA and hosts and
    the SOP's name; the ticket id/URL the system answers are recorded and readable by later steps."""
    run_id, status, _, s = await env.run(TICKET, target={"hosts": ["local"]})
    assert status == "success", s["t"].reason
    assert len(env.receiver.seen) == 1
    sent = env.receiver.seen[0]
    assert sent.method == "POST" and sent.path == "/api/tickets" and sent.headers["authorization"] == "Bearer tk"
    assert sent.json() == {"title": "Disk almost full: db1, h1", "requester": "alice", "sla": "P2",
                           "hosts": ["db1", "h1"], "sop": "disk-sop"}
    result = s["t"].result
    assert (result["ticket_id"], result["ticket_url"], result["hosts"]) == ("T-1", "https://tickets.example/T-1",
                                                                            ["db1", "h1"])
    assert s["after"].result["output"] == "opened T-1 https://tickets.example/T-1"
    recorded = await env.auto.tickets.list(run_id=run_id)
    assert len(recorded) == 1
    t = recorded[0]
    assert (t["ticket_id"], t["url"], t["status"], t["step_id"]) == ("T-1", "https://tickets.example/T-1",
                                                                     "created", "t")
    assert (t["template"], t["requester"], t["sla"], t["hosts"]) == ("disk-full-high", "alice", "P2", ["db1", "h1"])
    events = [e for e in await env.sop.records.events(run_id) if e["kind"] == "step.ticket"]
    assert [(e["step"], e["data"]["ticket_id"]) for e in events] == [("t", "T-1")]


async def test_ticket_step_fails_when_the_ticket_system_answers_500(env: Env) -> None:
    """A ticket system answering 500 fails the step (and the run) with a reason carrying the system's
    answer; the attempt is recorded as a failed ticket and nothing after the step runs."""
    env.receiver.answer = lambda seen: (500, b"tickets database is down")
    run_id, status, reason, s = await env.run(TICKET, target={"hosts": ["local"]})
    assert status == "failed"
    assert s["t"].status == "failed"
    assert "HTTP 500" in s["t"].reason and "tickets database is down" in s["t"].reason, s["t"].reason
    assert "ticket (disk-full-high) not opened" in s["t"].reason
    assert "step t failed" in reason and "HTTP 500" in reason, reason
    assert s["after"].status == "skipped"
    recorded = await env.auto.tickets.list(run_id=run_id)
    assert [(r["status"], r["ticket_id"]) for r in recorded] == [("failed", None)]
    assert "HTTP 500" in recorded[0]["error"]


async def test_ticket_step_fails_when_the_answer_has_no_id(env: Env) -> None:
    """A 2xx answer without the configured id field is not a ticket: the step fails saying so."""
    env.receiver.answer = lambda seen: (200, {"ok": True})
    run_id, status, _, s = await env.run(TICKET, target={"hosts": ["local"]})
    assert status == "failed" and s["t"].status == "failed"
    assert "has no 'id'" in s["t"].reason and json.dumps({"ok": True}) in s["t"].reason, s["t"].reason
    assert (await env.auto.tickets.list(run_id=run_id))[0]["status"] == "failed"
