"""SOP runs in-process on a real SQLite archive: the original example, the DAG, failures, approvals, recovery.

Host steps run as real tasks: on a fake connector (scripted per host and command) or on the built-in
``local`` host (real commands on this machine). Tickets, HTTP steps and notifications go to a local
HTTP receiver.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_notify import Receiver

from smallyi.audit.trail import AuditFilter
from smallyi.config import parse_settings
from smallyi.errors import Forbidden, InputError
from smallyi.execution.connectors.fake import FakeConnector, FakeHost
from smallyi.inventory.hosts import HostSpec
from smallyi.policy import bindings
from smallyi.runtime import Runtime
from smallyi.sop import automation
from smallyi.sop.service import SopService, Starter
from smallyi.sop.validate import load_sop
from smallyi.storage.models import Task, utcnow
from support import ADMIN_HASH

#: the people these runs are started and decided by: a run's approvals need its starter's account
USERS = "auth:\n  users:\n" + "".join(f'    - {{username: {n}, password_hash: "{ADMIN_HASH}"}}\n'
                                         for n in ("alice", "bob", "carol", "dave"))

FULL = "/dev/sda1        50G   48G  2.0G  95% /"
OK = "/dev/sda1        50G   12G   38G  24% /"
ORIGINAL = """\
steps:
  - id: check_disk
    type: exec
    cmd: "df -h | grep '/$'"
    timeout: 10
  - id: alert_if_full
    type: if
    condition: "{{ .output | contains '95%' }}"
    then: { action: "create_ticket", template: "disk-full-high" }
"""


def tickets_config(url: str) -> str:
    return (f"tickets:\n  url: {url}/api/tickets\n  headers:\n    Authorization: \"Bearer tk\"\n"
            "  templates:\n    disk-full-high:\n      sla: P1\n      body:\n"
            "        title: \"Disk almost full: {{ hosts_text }}\"\n        requester: \"{{ requester }}\"\n"
            "        sla: \"{{ sla }}\"\n        hosts: \"{{ hosts }}\"\n        sop: \"{{ sop }}\"\n")


@dataclass
class Env:
    rt: Runtime
    auto: automation.Automation
    fake: FakeConnector
    receiver: Receiver

    @property
    def sop(self) -> SopService:
        return self.auto.sop

    async def run(self, source: str, *, starter: Starter | None = None, timeout: float = 30,
                  **kw: Any) -> tuple[int, str, str, dict[str, Any]]:
        sop, _ = load_sop(source)
        run_id = await self.sop.start(sop, source, starter=starter or Starter("alice"), **kw)
        status, reason = await asyncio.wait_for(self.sop.wait(run_id), timeout)
        steps = {s.step_id: s for s in await self.sop.records.steps(run_id)}
        return run_id, status, reason, steps


Behaviour = Callable[[HostSpec, str], FakeHost]


def inline(command: str) -> str:
    """A step's command with its pinned values put back where it references them (what a fake host echoes)."""
    pins, start = bindings.split(command)
    body = command[start:]
    for name, value in pins.items():
        body = body.replace(f'"${{{name}}}"', value).replace(f"${{{name}}}", value)
    return body


def scripted(host: HostSpec, command: str) -> FakeHost:
    """Fake hosts: `df` prints a full disk on h1 only; `fail` exits 1; `slow` takes 0.4s; else echo."""
    command = inline(command)
    if command.startswith("df"):
        return FakeHost(stdout=[FULL if host.name == "h1" else OK])
    if "fail" in command:
        return FakeHost(stderr=["boom"], exit_code=1)
    if "slow" in command:
        return FakeHost(stdout=[f"{host.name} done"], duration=0.4)
    return FakeHost(stdout=[f"{host.name}: {command}"])


async def make_env(tmp_path: Path, behaviour: Behaviour = scripted, extra: str = "", notify: str = "") -> Env:
    receiver = Receiver(answer=lambda seen: (201, {"id": f"T-{len(receiver.seen)}",
                                                   "url": f"https://tickets.example/T-{len(receiver.seen)}"}))
    text = (f"database:\n  source: {tmp_path}/s.db\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f"{tickets_config(receiver.url)}notify:\n  retries: 0\n{notify}"
            f"  channels:\n    ops:\n      kind: webhook\n      url: {receiver.url}/hook\n"
            f"sop:\n  environments:\n    prod: {{REGION: cn-north}}\n{USERS}{extra}")
    fake = FakeConnector(behaviour)
    rt = await Runtime.open(parse_settings(text, base_dir=tmp_path), kind="cli", connectors={"ssh": fake})
    await rt.inventory.upsert([HostSpec("h1", "10.0.0.1", groups=("web",)), HostSpec("h2", "10.0.0.2", groups=("web",)),
                               HostSpec("db1", "10.0.0.3", groups=("db",))], source="manual")
    return Env(rt, automation.build(rt), fake, receiver)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path)
    yield e
    await e.auto.close()
    await e.rt.close()
    e.receiver.close()


async def test_original_example_opens_a_ticket_for_the_full_host(env: Env) -> None:
    """The original YAML as written: df on two hosts, one at 95%: one ticket, for that host, recorded."""
    run_id, status, _, steps = await env.run(ORIGINAL, target={"group": "web"})
    assert status == "success"
    assert steps["check_disk"].status == "success" and "95%" in steps["check_disk"].result["hosts"]["h1"]["output"]
    decided = steps["alert_if_full"].result
    assert decided["result"] is True and decided["matched_hosts"] == ["h1"]
    assert decided["tickets"] == [{"ticket_id": "T-1", "url": "https://tickets.example/T-1", "hosts": ["h1"]}]
    sent = env.receiver.seen[0]
    assert sent.path == "/api/tickets" and sent.headers["authorization"] == "Bearer tk"
    assert sent.json() == {"title": "Disk almost full: h1", "requester": "alice", "sla": "P1", "hosts": ["h1"],
                           "sop": ""}
    recorded = await env.auto.tickets.list(run_id=run_id)
    assert recorded[0]["ticket_id"] == "T-1" and recorded[0]["url"] == "https://tickets.example/T-1"
    assert recorded[0]["status"] == "created" and recorded[0]["step_id"] == "alert_if_full"


async def test_no_ticket_when_no_disk_is_full(env: Env) -> None:
    """The condition is false on healthy hosts: no ticket, the run succeeds."""
    _, status, _, steps = await env.run(ORIGINAL, target={"hosts": ["h2"]})
    assert status == "success" and steps["alert_if_full"].result["result"] is False
    assert env.receiver.seen == []


async def test_ticket_system_failure_fails_the_step_and_is_recorded(env: Env) -> None:
    """A ticket system answering 500 fails the step; the attempt is recorded as a failed ticket."""
    env.receiver.answer = lambda seen: (500, b"down")
    run_id, status, reason, _ = await env.run(ORIGINAL, target={"group": "web"})
    assert status == "failed" and "HTTP 500" in reason
    assert (await env.auto.tickets.list(run_id=run_id))[0]["status"] == "failed"


async def test_parallel_branches_run_together_and_joins_wait(env: Env) -> None:
    """Two branches after a root overlap in time; the join starts after both ended."""
    src = """
steps:
  - {id: root, type: exec, cmd: echo go}
  - {id: left, type: exec, needs: [root], cmd: slow left}
  - {id: right, type: exec, needs: [root], cmd: slow right}
  - {id: join, type: exec, needs: [left, right], cmd: "echo {{ .steps.left.status }}"}
"""
    t0 = time.monotonic()
    _, status, _, s = await env.run(src, target={"hosts": ["h1"]})
    assert status == "success"
    assert s["left"].started_at < s["right"].finished_at and s["right"].started_at < s["left"].finished_at
    assert s["join"].started_at >= max(s["left"].finished_at, s["right"].finished_at)
    assert s["join"].result["output"] == "h1: echo success"
    assert time.monotonic() - t0 < 5


async def test_retries_run_again_only_where_it_failed(tmp_path: Path) -> None:
    """A retry targets the hosts that failed; the merged result succeeds with both tasks recorded."""
    tries: dict[str, int] = {}

    def flaky(host: HostSpec, command: str) -> FakeHost:
        tries[host.name] = tries.get(host.name, 0) + 1
        return FakeHost(exit_code=1 if host.name == "h2" and tries[host.name] == 1 else 0, stdout=[host.name])

    e = await make_env(tmp_path, flaky)
    try:
        _, status, _, s = await e.run("steps:\n  - {id: a, type: exec, cmd: x, retries: 2, retry_delay: 10ms}\n",
                                      target={"group": "web"})
        assert status == "success" and tries == {"h1": 1, "h2": 2}
        assert s["a"].attempts == 2 and len(s["a"].task_ids) == 2
        assert s["a"].result["ok_hosts"] == ["h1", "h2"] and s["a"].result["output"] == "h1\nh2"
    finally:
        await e.auto.close()
        await e.rt.close()
        e.receiver.close()


async def test_on_failure_stop_continue_and_handler(env: Env) -> None:
    """stop skips what follows; continue lets dependents run; a handler runs with the failed step's result."""
    _, status, reason, s = await env.run("steps:\n  - {id: a, type: exec, cmd: fail}\n  - {id: b, type: exec, cmd: x}\n",
                                         target={"hosts": ["h1"]})
    assert status == "failed" and "step a failed" in reason and s["b"].status == "skipped"
    _, status, _, s = await env.run(
        "steps:\n  - {id: a, type: exec, cmd: fail, on_failure: continue}\n  - {id: b, type: exec, cmd: x}\n",
        target={"hosts": ["h1"]})
    assert status == "success" and s["a"].status == "failed" and s["b"].status == "success"
    src = """
steps:
  - {id: a, type: exec, cmd: fail, on_failure: {run: cleanup}}
  - {id: b, type: exec, cmd: x}
  - {id: cleanup, type: exec, cmd: "echo cleaning after {{ .failed_step.id }} {{ .stderr }}"}
"""
    _, status, _, s = await env.run(src, target={"hosts": ["h1"]})
    assert status == "failed" and s["b"].status == "skipped"
    assert s["cleanup"].status == "success" and s["cleanup"].result["output"] == "h1: echo cleaning after a boom"


async def test_when_skips_and_skipped_steps_do_not_block(env: Env) -> None:
    """A false `when` skips the step; steps after it still run."""
    src = "vars: {go: 'no'}\nsteps:\n  - {id: a, type: exec, cmd: x, when: .vars.go}\n  - {id: b, type: exec, cmd: y}\n"
    _, status, _, s = await env.run(src, target={"hosts": ["h1"]})
    assert status == "success" and s["a"].status == "skipped" and s["b"].status == "success"
    _, _, _, s = await env.run(src, target={"hosts": ["h1"]}, variables={"go": "yes"})
    assert s["a"].status == "success"


async def test_command_timeout_on_a_real_command(env: Env) -> None:
    """A step's timeout bounds its command (Go durations or seconds): the host ends timeout."""
    t0 = time.monotonic()
    _, status, reason, s = await env.run("steps:\n  - {id: a, type: exec, cmd: 'sleep 20', timeout: 500ms}\n",
                                         target={"hosts": ["local"]})
    assert status == "failed" and s["a"].result["hosts"]["local"]["status"] == "timeout"
    assert time.monotonic() - t0 < 10 and "timeout" in reason


async def test_variables_environments_and_outputs(env: Env) -> None:
    """vars, --inject-env values and a step's outputs reach later commands, each value quoted for the shell."""
    src = """
vars: {name: "two words", n: 2}
steps:
  - id: first
    type: exec
    cmd: "printf '%s|' {{ .vars.name }} {{ .env.REGION }} {{ .environment }}; echo {{ .vars.n }}"
    outputs:
      region: "{{ .output | split '|' | at 1 }}"
  - {id: second, type: exec, cmd: "echo region={{ .steps.first.outputs.region }}"}
"""
    _, status, _, s = await env.run(src, target={"hosts": ["local"]}, environment="prod")
    assert status == "success", s["first"].reason
    assert s["first"].result["output"] == "two words|cn-north|prod|2"
    assert s["first"].result["outputs"] == {"region": "cn-north"}
    assert s["second"].result["output"] == "region=cn-north"
    with pytest.raises(InputError, match="no environment 'staging'"):
        await env.run(src, target={"hosts": ["local"]}, environment="staging")
    with pytest.raises(InputError, match="'typo' not declared"):
        await env.run(src, target={"hosts": ["local"]}, variables={"typo": 1})


async def test_hostile_output_cannot_inject_commands(env: Env, tmp_path: Path) -> None:
    """Output a host printed, used in a later command, arrives as one quoted word."""
    marker = tmp_path / "pwned"
    src = f"""
steps:
  - {{id: a, type: exec, cmd: "echo '; touch {marker}'"}}
  - {{id: b, type: exec, cmd: "echo got {{{{ .output }}}}"}}
"""
    _, status, _, s = await env.run(src, target={"hosts": ["local"]})
    assert status == "success" and not marker.exists()
    assert s["b"].result["output"] == f"got ; touch {marker}"


async def test_template_step_writes_a_file_per_host(env: Env, tmp_path: Path) -> None:
    """A template renders per host (.host.name) and lands atomically with the mode asked."""
    dest = tmp_path / "app.conf"
    src = f"""
vars: {{port: 8080}}
steps:
  - id: render
    type: template
    dest: {dest}
    mode: "0600"
    content: |
      listen {{{{ .vars.port }}}}
      host {{{{ .host.name }}}}
"""
    _, status, _, s = await env.run(src, target={"hosts": ["local"]})
    assert status == "success", s["render"].reason
    assert dest.read_text() == "listen 8080\nhost local\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    assert "wrote" in s["render"].result["output"]


async def test_http_step(env: Env) -> None:
    """An http step calls from the server; its status, body and JSON are its result."""
    env.receiver.answer = lambda seen: (200, {"ok": True, "echo": seen.json()})
    src = f"""
vars: {{who: ops}}
steps:
  - id: call
    type: http
    method: POST
    url: "{env.receiver.url}/deploy?by={{{{ .vars.who | urlquery }}}}"
    json: {{service: web, who: "{{{{ .vars.who }}}}"}}
  - {{id: after, type: exec, cmd: "echo {{{{ .steps.call.json.echo.service }}}}"}}
"""
    _, status, _, s = await env.run(src, target={"hosts": ["h1"]})
    assert status == "success"
    assert s["call"].result["status_code"] == 200 and s["call"].result["json"]["echo"] == {"service": "web",
                                                                                          "who": "ops"}
    assert env.receiver.seen[0].query == {"by": ["ops"]}
    assert s["after"].result["output"] == "h1: echo web"
    env.receiver.answer = lambda seen: (503, b"no")
    _, status, reason, _ = await env.run(src, target={"hosts": ["h1"]})
    assert status == "failed" and "503" in reason


async def wait_for_step(sop: SopService, run_id: int, step: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {s.step_id: s.status for s in await sop.records.steps(run_id)}
        if rows.get(step) == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"step {step} never reached {status}: {rows}")


APPROVAL = """
steps:
  - {id: gate, type: approval, message: "restart web on {{ .environment }}?", approvers: [bob]}
  - {id: act, type: exec, cmd: "echo restarted"}
"""


async def test_approval_waits_for_a_listed_approver(env: Env) -> None:
    """The run waits; the starter cannot approve, an unlisted user cannot, the listed one can; then it goes on."""
    sop, _ = load_sop(APPROVAL)
    run_id = await env.sop.start(sop, APPROVAL, starter=Starter("alice"), target={"hosts": ["h1"]})
    await wait_for_step(env.sop, run_id, "gate", "waiting")
    with pytest.raises(Forbidden, match="started the run"):
        await env.sop.decide(run_id, "gate", by="alice", approve=True)
    with pytest.raises(Forbidden, match="only bob"):
        await env.sop.decide(run_id, "gate", by="carol", approve=True)
    decided = await env.sop.decide(run_id, "gate", by="bob", approve=True, comment="go")
    assert decided["status"] == "approved"
    status, _ = await env.sop.wait(run_id)
    steps = {s.step_id: s for s in await env.sop.records.steps(run_id)}
    assert status == "success" and steps["gate"].result["decided_by"] == "bob"
    assert steps["act"].status == "success"
    kinds = [e["kind"] for e in await env.sop.records.events(run_id)]
    assert "step.waiting" in kinds and kinds[-1] == "run.finish"


async def test_rejection_fails_the_run(env: Env) -> None:
    """A rejected approval fails its step and skips the rest."""
    sop, _ = load_sop(APPROVAL)
    run_id = await env.sop.start(sop, APPROVAL, starter=Starter("alice"), target={"hosts": ["h1"]})
    await wait_for_step(env.sop, run_id, "gate", "waiting")
    await env.sop.decide(run_id, "gate", by="bob", approve=False, comment="not now")
    status, reason = await env.sop.wait(run_id)
    assert status == "failed" and "rejected by bob: not now" in reason


async def test_cancel_stops_remote_commands(env: Env) -> None:
    """Cancelling a run stops its running command on the host and skips the rest."""
    src = "steps:\n  - {id: a, type: exec, cmd: 'sleep 30'}\n  - {id: b, type: exec, cmd: 'echo no'}\n"
    sop, _ = load_sop(src)
    run_id = await env.sop.start(sop, src, starter=Starter("alice"), target={"hosts": ["local"]})
    await wait_for_step(env.sop, run_id, "a", "running")
    await asyncio.sleep(0.5)
    t0 = time.monotonic()
    await env.sop.cancel(run_id, by="bob")
    status, reason = await asyncio.wait_for(env.sop.wait(run_id), 15)
    steps = {s.step_id: s for s in await env.sop.records.steps(run_id)}
    assert status == "cancelled" and reason == "cancelled by bob" and time.monotonic() - t0 < 10
    assert steps["a"].result["hosts"]["local"]["status"] == "cancelled" and steps["b"].status == "skipped"


async def test_sop_step_runs_a_stored_sop_as_a_child(env: Env) -> None:
    """A sop step runs the stored SOP with the vars given, as a child run of the same starter."""
    child = "name: child\nvars: {what: x}\nsteps:\n  - {id: c, type: exec, cmd: 'echo child {{ .vars.what }}'}\n"
    await env.sop.store.save("child", child, by="alice")
    run_id, status, _, s = await env.run(
        "steps:\n  - {id: call, type: sop, sop: child, vars: {what: '{{ .run.started_by }}'}}\n",
        target={"hosts": ["h1"]})
    assert status == "success" and s["call"].result["steps"] == {"c": "success"}
    child_run = await env.sop.records.run(s["call"].result["run_id"])
    assert child_run.parent_run_id == run_id and child_run.started_by == "alice" and child_run.trigger == "sop"
    child_steps = await env.sop.records.steps(child_run.id)
    assert child_steps[0].result["output"] == "h1: echo child alice"


async def test_run_notification_on_failure(env: Env) -> None:
    """A SOP's notify block sends when the run fails, with the failed step named."""
    src = "notify: {channel: ops, on: [failure]}\nsteps:\n  - {id: a, type: exec, cmd: fail}\n"
    run_id, status, _, _ = await env.run(src, target={"hosts": ["h1"]})
    await env.auto.notify.drain()
    assert status == "failed"
    doc = env.receiver.seen[0].json()
    assert doc["event"] == "sop_run" and doc["status"] == "failure" and "a: failed" in doc["text"]
    assert (await env.auto.notify.deliveries())[0]["event_key"] == f"sop_run:{run_id}:failure"


async def test_notify_step_failure_does_not_fail_the_run(env: Env) -> None:
    """A notify step whose channel fails records the failure and the run goes on."""
    env.receiver.answer = lambda seen: (500, b"down")
    _, status, _, s = await env.run("steps:\n  - {id: tell, type: notify, channel: ops, message: hi}\n")
    assert status == "success" and s["tell"].result["delivered"] is False and "HTTP 500" in s["tell"].reason


async def test_group_scoped_starter_cannot_reach_other_groups(tmp_path: Path) -> None:
    """A starter granted only group web gets the step refused on a db host."""
    e = await make_env(tmp_path, extra="roles:\n  runner:\n    permissions: [sop.run]\n")
    try:
        starter = Starter("dave", "runner", ("web",), "api")
        _, status, _, _ = await e.run("steps:\n  - {id: a, type: exec, cmd: x}\n", target={"hosts": ["h1"]},
                                      starter=starter)
        assert status == "success"
        _, status, reason, _ = await e.run("steps:\n  - {id: a, type: exec, cmd: x}\n",
                                           target={"hosts": ["db1"]}, starter=starter)
        assert status == "failed" and "db1" in reason and "web" in reason
    finally:
        await e.auto.close()
        await e.rt.close()
        e.receiver.close()


async def test_dry_run_shows_what_would_run_where(env: Env) -> None:
    """A dry run resolves targets and renders commands, runs nothing and records nothing."""
    src = ("vars: {p: /var}\nsteps:\n  - {id: a, type: exec, cmd: 'du -sh {{ .vars.p }}'}\n"
           "  - {id: b, type: exec, target: {hosts: '{{ .steps.a.failed_hosts }}'}, cmd: 'echo {{ .steps.a.output }}'}\n")
    sop, _ = load_sop(src)
    preview = await env.sop.preview(sop, target={"group": "web"})
    a, b = preview["steps"]
    assert a["hosts"] == ["h1", "h2"] and a["wave"] == 1
    assert a["command"] == "export SY_V_p='/var'; readonly SY_V_p\ndu -sh \"${SY_V_p}\""
    assert b["hosts"] == [] and "run time" in b["note"]
    assert env.fake.commands == [] and (await env.sop.records.runs())[1] == 0


async def test_a_run_left_waiting_resumes_in_another_process(env: Env) -> None:
    """A process that stops while a run waits for approval leaves it; the next one resumes it and it finishes."""
    sop, _ = load_sop(APPROVAL)
    run_id = await env.sop.start(sop, APPROVAL, starter=Starter("alice"), target={"hosts": ["h1"]})
    await wait_for_step(env.sop, run_id, "gate", "waiting")
    await env.sop.close()  # the process stops
    assert (await env.sop.records.run(run_id)).status == "running"
    await env.sop.records.set_run(run_id, runner="server:elsewhere:1", heartbeat_at=None)
    other = SopService(settings=env.rt.settings, db=env.rt.db, bus=env.rt.bus, tasks=env.rt.tasks,
                       inventory=env.rt.inventory, archive=env.rt.archive, roles=env.rt.roles,
                       runner="server:here:2", tickets=env.auto.tickets)
    await env.sop.records.set_run(run_id, heartbeat_at=utcnow())
    assert await other.recover() == ([], [])  # the other process's lease has not run out
    await env.sop.records.set_run(run_id, runner="server:elsewhere:1", heartbeat_at=utcnow() - timedelta(minutes=5))
    resumed, interrupted = await other.recover()
    assert resumed == [run_id] and interrupted == []
    await other.decide(run_id, "gate", by="bob", approve=True)
    status, _ = await asyncio.wait_for(other.wait(run_id), 15)
    assert status == "success"
    kinds = [e["kind"] for e in await other.records.events(run_id)]
    assert "run.paused" in kinds and "run.resume" in kinds
    assert (await other.step_approvals.list(run_id=run_id))[1] == 1  # the same approval, not asked for twice
    await other.close()


async def test_a_run_stopped_mid_command_is_interrupted(env: Env) -> None:
    """A run whose process died while a command ran ends interrupted; the command is never run again."""
    src = "steps:\n  - {id: a, type: exec, cmd: slow}\n  - {id: b, type: exec, cmd: x}\n"
    sop, _ = load_sop(src)
    run_id = await env.sop.start(sop, src, starter=Starter("alice"), target={"hosts": ["h1"]})
    await wait_for_step(env.sop, run_id, "a", "running")
    await env.sop.close()
    assert (await env.sop.records.run(run_id)).status == "interrupted"
    steps = {s.step_id: s.status for s in await env.sop.records.steps(run_id)}
    assert steps == {"a": "interrupted", "b": "skipped"}


async def test_cancelling_a_parent_cancels_its_child(env: Env) -> None:
    """A cancel reaches the child run of a sop step: both end cancelled."""
    await env.sop.store.save("long", "steps:\n  - {id: w, type: exec, cmd: 'sleep 30', target: {hosts: [local]}}\n",
                             by="alice")
    src = "steps:\n  - {id: call, type: sop, sop: long}\n"
    sop, _ = load_sop(src)
    run_id = await env.sop.start(sop, src, starter=Starter("alice"))
    await wait_for_step(env.sop, run_id, "call", "running")
    for _ in range(100):
        runs, _ = await env.sop.records.runs()
        if len(runs) == 2 and (await env.sop.records.steps(runs[0].id))[0].status == "running":
            break
        await asyncio.sleep(0.05)
    await env.sop.cancel(run_id, by="bob")
    status, _ = await asyncio.wait_for(env.sop.wait(run_id), 20)
    child = (await env.sop.records.runs())[0][0]
    assert status == "cancelled" and child.parent_run_id == run_id and child.status == "cancelled"


async def test_a_condition_that_cannot_be_evaluated_fails_the_step(env: Env) -> None:
    """A `when` that errors at run time fails its step with the reason; the run ends, it does not hang."""
    src = "steps:\n  - {id: a, type: exec, cmd: x}\n  - {id: b, type: exec, cmd: y, when: '{{ .output | int }}'}\n"
    _, status, _, s = await env.run(src, target={"hosts": ["h1"]})
    assert status == "failed" and s["b"].status == "failed" and "when: int: expected a number" in s["b"].reason


async def test_the_command_policy_judges_file_writes(tmp_path: Path) -> None:
    """A template step's write is judged as `cat > DEST` (and chmod): a deny rule on the path refuses the step
    before anything is written; other paths are written."""
    denied, allowed = tmp_path / "forbidden.conf", tmp_path / "ok.conf"
    e = await make_env(tmp_path, extra=f"policy:\n  rules:\n    - name: no-forbidden\n      deny: ['> {denied}']\n"
                                        "      reason: that file is managed elsewhere\n")
    try:
        step = "steps:\n  - {{id: w, type: template, dest: {dest}, content: 'x={{{{ .host.name }}}}'}}\n"
        _, status, _, s = await e.run(step.format(dest=denied), target={"hosts": ["local"]})
        assert status == "failed" and "managed elsewhere" in s["w"].reason and not denied.exists()
        _, status, _, s = await e.run(step.format(dest=allowed), target={"hosts": ["local"]})
        assert status == "success" and allowed.read_text() == "x=local"
    finally:
        await e.auto.close()
        await e.rt.close()
        e.receiver.close()


async def test_a_held_step_stops_with_the_run_and_its_approval_cannot_be_given_after(tmp_path: Path) -> None:
    """An exec step the policy holds waits; cancelling the run cancels the step, and its approval is closed
    (expired) so nobody can approve a command nothing waits for any more."""
    e = await make_env(tmp_path, extra="policy:\n  rules:\n    - name: held\n      approve: ['systemctl restart *']\n")
    try:
        source = "steps:\n  - {id: r, type: exec, cmd: systemctl restart nginx}\n"
        sop, _ = load_sop(source)
        run_id = await e.sop.start(sop, source, starter=Starter("alice"), target={"hosts": ["h1"]})
        approvals = e.rt.approvals
        for _ in range(200):
            rows, _ = await approvals.list(status="pending", limit=10, offset=0)
            if rows:
                break
            await asyncio.sleep(0.05)
        assert rows and rows[0].request["kind"] == "sop-command" and rows[0].request["person"] == "alice"
        with pytest.raises(Forbidden):
            await approvals.decide(rows[0].id, by="alice", approve=True)
        await e.sop.cancel(run_id, by="bob")
        status, _ = await asyncio.wait_for(e.sop.wait(run_id), 20)
        step = (await e.sop.records.steps(run_id))[0]
        assert status == "cancelled" and step.status == "cancelled" and "cancelled while approval" in step.reason
        assert (await approvals.get(rows[0].id)).status == "expired"
        async with e.rt.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Task)) == 0  # nothing ran
    finally:
        await e.auto.close()
        await e.rt.close()
        e.receiver.close()


async def test_runs_leave_an_audit_trail(env: Env) -> None:
    """Start, approval, end, cancel and interruption of runs are audited, whoever started them; the chain holds."""
    sop, _ = load_sop(APPROVAL)
    approved = await env.sop.start(sop, APPROVAL, starter=Starter("alice", trigger="api", client="127.0.0.9"),
                                   target={"hosts": ["h1"]}, environment="prod")
    await wait_for_step(env.sop, approved, "gate", "waiting")
    await env.sop.decide(approved, "gate", by="bob", approve=True, comment="go", client="127.0.0.8")
    assert (await env.sop.wait(approved))[0] == "success"
    rejected = await env.sop.start(sop, APPROVAL, starter=Starter("alice"), target={"hosts": ["h1"]})
    await wait_for_step(env.sop, rejected, "gate", "waiting")
    await env.sop.decide(rejected, "gate", by="bob", approve=False, comment="not now")
    assert (await env.sop.wait(rejected))[0] == "failed"
    slow = "steps:\n  - {id: a, type: exec, cmd: 'sleep 30'}\n"
    cancelled = await env.sop.start(load_sop(slow)[0], slow, starter=Starter("alice"), target={"hosts": ["local"]})
    await wait_for_step(env.sop, cancelled, "a", "running")
    await env.sop.cancel(cancelled, by="carol")
    assert (await asyncio.wait_for(env.sop.wait(cancelled), 15))[0] == "cancelled"
    stopped = await env.sop.start(load_sop(slow)[0], slow, starter=Starter("dave"), target={"hosts": ["local"]})
    await wait_for_step(env.sop, stopped, "a", "running")
    await env.sop.close()  # the process stops mid-command: the run is interrupted

    entries, _ = await env.rt.audit.search(AuditFilter(action="sop."), limit=100, offset=0)
    seen = [(e.action, e.actor, e.result, e.detail["run"]) for e in reversed(entries)]
    assert seen == [
        ("sop.start", "alice", "ok", approved), ("sop.approved", "bob", "ok", approved),
        ("sop.finish", "alice", "success", approved),
        ("sop.start", "alice", "ok", rejected), ("sop.rejected", "bob", "ok", rejected),
        ("sop.finish", "alice", "failed", rejected),
        ("sop.start", "alice", "ok", cancelled), ("sop.cancel", "carol", "ok", cancelled),
        ("sop.finish", "alice", "cancelled", cancelled),
        ("sop.start", "dave", "ok", stopped), ("sop.finish", "dave", "interrupted", stopped),
    ]
    start = next(e for e in entries if e.action == "sop.start" and e.detail["run"] == approved)
    assert start.client == "127.0.0.9" and start.target == f"SOP run {approved} (file)" and start.perm == "sop.run"
    assert start.detail["trigger"] == "api" and start.detail["environment"] == "prod"
    assert start.detail["target"] == {"hosts": ["h1"]}
    decision = next(e for e in entries if e.action == "sop.approved")
    assert decision.client == "127.0.0.8" and decision.detail["step"] == "gate" and decision.detail["comment"] == "go"
    assert "rejected by bob" in next(e for e in entries if e.action == "sop.finish"
                                     and e.detail["run"] == rejected).detail["reason"]
    # the commands the steps ran are audited as tasks of the run and its starter
    tasks, _ = await env.rt.audit.search(AuditFilter(action="task.create", actor=f"sop:{approved}:alice"),
                                         limit=100, offset=0)
    assert [e.detail["command"] for e in tasks] == ["echo restarted"]
    assert (await env.rt.audit.verify()).ok


async def test_a_run_whose_server_died_mid_command_is_interrupted_by_the_next(env: Env) -> None:
    """A run left `running` by a server that died (no pause recorded: the process was killed) while a
    command ran: the next process's recovery ends it `interrupted`, the running step interrupted, the rest
    skipped, a run.finish event for followers and an audit record; the command is not run again."""
    from smallyi.storage.models import SopRun

    src = "steps:\n  - {id: a, type: exec, cmd: slow}\n  - {id: b, type: exec, cmd: x}\n"
    row = SopRun(sop_name="crashed", sop_version=0, source=src, status="running", trigger="api", started_by="alice",
                 role="admin", groups=[], environment="", target={"hosts": ["h1"]}, vars={},
                 runner="server:elsewhere:1", heartbeat_at=utcnow() - timedelta(minutes=5), created_at=utcnow())
    run_id = await env.sop.records.create(row, [("a", "exec", 1), ("b", "exec", 2)])
    await env.sop.records.set_step(run_id, "a", status="running")
    resumed, interrupted = await env.sop.recover()
    assert resumed == [] and interrupted == [run_id]
    run = await env.sop.records.run(run_id)
    assert run.status == "interrupted" and run.reason == "the process running it stopped"
    steps = {s.step_id: (s.status, s.reason) for s in await env.sop.records.steps(run_id)}
    assert steps == {"a": ("interrupted", "the process running it stopped"), "b": ("skipped", "the run was interrupted")}
    last = (await env.sop.records.events(run_id))[-1]
    assert last["kind"] == "run.finish" and last["data"]["status"] == "interrupted"
    assert env.fake.commands == []  # nothing re-run behind anyone's back
    audit, _ = await env.rt.audit.search(AuditFilter(action="sop.finish"), limit=5, offset=0)
    assert [(e.detail["run"], e.result) for e in audit] == [(run_id, "interrupted")]
    assert await env.sop.recover() == ([], [])  # once


async def test_configured_notification_templates_shape_the_message(tmp_path: Path) -> None:
    """notify.templates.sop_run replaces the default message of a run's notification; a template that
    fails while rendering (1/0) falls back to the default instead of losing the message."""
    custom = ('  templates:\n    sop_run: "[{{ status | upper }}] {{ sop }} #{{ run_id }}\\n'
              'by {{ started_by }}{% for s in steps if s.status != \'success\' %} {{ s.id }}={{ s.status }}'
              '{% endfor %}"\n')
    env = await make_env(tmp_path, notify=custom)
    try:
        src = ("name: nightly\nnotify: {channels: [ops], on: [finish]}\n"
               "steps:\n  - {id: a, type: exec, cmd: fail}\n  - {id: b, type: exec, cmd: x, needs: [a]}\n")
        run_id, status, _, _ = await env.run(src, target={"hosts": ["h1"]})
        await env.auto.notify.drain(timeout=10)
        sent = [s.json() for s in env.receiver.seen if s.path == "/hook"]
        assert status == "failed" and len(sent) == 1, sent
        assert sent[0]["title"] == f"[FAILED] nightly #{run_id}"
        assert sent[0]["text"] == "by alice a=failed b=skipped"
    finally:
        await env.auto.close()
        await env.rt.close()
        env.receiver.close()
    broken = '  templates:\n    sop_run: "{{ run_id / 0 }}"\n'
    env = await make_env(tmp_path / "2", notify=broken)
    try:
        run_id, status, _, _ = await env.run("name: n2\nnotify: {channels: [ops], on: [finish]}\n"
                                             "steps:\n  - {id: a, type: exec, cmd: x}\n", target={"hosts": ["h1"]})
        await env.auto.notify.drain(timeout=10)
        sent = [s.json() for s in env.receiver.seen if s.path == "/hook"]
        assert status == "success" and len(sent) == 1 and sent[0]["title"] == f"[small-yi] SOP n2 #{run_id} success"
    finally:
        await env.auto.close()
        await env.rt.close()
        env.receiver.close()
