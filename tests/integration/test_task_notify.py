"""A task's own notification (`small-yi run --notify`, `notify` in `POST /api/v1/tasks`): real fleet hosts,
a real server, and the local HTTP receiver of the notifier tests standing in for the chat tool.

Unknown channels are refused before anything runs; the message goes out only on the events asked for,
once per channel, whether the CLI (in-process) or the server (watching the archive) sends it."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_notify import Receiver

from smallyi.testing import Fleet
from support import Server, cli, start_server, write_config

pytestmark = [pytest.mark.fleet, pytest.mark.slow]


class Env:
    def __init__(self, tmp: Path, fleet: Fleet, receiver: Receiver) -> None:
        extra = fleet.ssh_yaml() + (f"notify:\n  retries: 0\n  timeout: 5s\n  channels:\n"
                                    f"    hook:\n      kind: webhook\n      url: {receiver.url}/hook\n"
                                    f"      secret: s3cret\n"
                                    f"    ops-wecom:\n      kind: wecom\n      url: {receiver.url}/wecom?key=K\n")
        self.cfg = write_config(tmp, extra=extra)
        self.receiver = receiver
        lines = ["group: fleet", "hosts:"]
        for name, addr in fleet.hosts[:3]:
            lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {fleet.port}"]
        (tmp / "inventory.yaml").write_text("\n".join(lines) + "\n")
        r = cli("hosts", "import", str(tmp / "inventory.yaml"), config=self.cfg)
        assert r.returncode == 0, r.stderr

    def tasks(self) -> int:
        with sqlite3.connect(self.cfg.parent / "data" / "small-yi.db") as c:
            return int(c.execute("select count(*) from tasks").fetchone()[0])

    def messages(self, path: str) -> list[dict[str, Any]]:
        return [s.json() for s in self.receiver.seen if s.path == path]


@pytest.fixture
def env(tmp_path: Path, ssh_fleet: Fleet) -> Iterator[Env]:
    r = Receiver()
    yield Env(tmp_path, ssh_fleet, r)
    r.close()


def wait_for(env: Env, path: str, n: int, timeout: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(env.messages(path)) < n:
        time.sleep(0.1)
    return env.messages(path)


def test_cli_run_notifies_its_channels_on_failure(env: Env) -> None:
    """In-process: a failing task tells both channels (each in its vendor's format), the CLI waits for the delivery."""
    r = cli("run", "--cmd", "echo out; exit 3", "--group", "fleet", "--notify", "hook,ops-wecom", config=env.cfg)
    assert r.returncode == 1, r.stderr
    [hook] = env.messages("/hook")
    assert hook["event"] == "task" and hook["status"] == "failure"
    assert hook["data"]["command"] == "echo out; exit 3" and hook["data"]["counts"] == {"failed": 3}
    assert hook["data"]["created_by"].startswith("cli:")
    seen = next(s for s in env.receiver.seen if s.path == "/hook")
    assert seen.headers["x-smallyi-signature"].startswith("sha256=")  # the channel's secret signs it
    [wecom] = env.messages("/wecom")
    assert wecom["msgtype"] == "markdown" and "exit 3" in wecom["markdown"]["content"]


def test_cli_run_notify_on_chooses_the_events(env: Env) -> None:
    """Default on: failure (a success says nothing); --notify-on success / finish send for a success."""
    assert cli("run", "--cmd", "true", "--group", "fleet", "--notify", "hook", config=env.cfg).returncode == 0
    assert env.messages("/hook") == []
    assert cli("run", "--cmd", "true", "--hosts", "host-001", "--notify", "hook", "--notify-on", "success",
               config=env.cfg).returncode == 0
    assert cli("run", "--cmd", "false", "--hosts", "host-001", "--notify", "hook", "--notify-on", "success",
               config=env.cfg).returncode == 1
    assert cli("run", "--cmd", "false", "--hosts", "host-002", "--notify", "hook", "--notify-on", "finish",
               config=env.cfg).returncode == 1
    assert [(m["status"], m["data"]["host_count"]) for m in env.messages("/hook")] == [("success", 1), ("failure", 1)]


def test_unknown_channels_and_bad_events_stop_before_anything_runs(env: Env) -> None:
    """An unknown channel is exit 2 naming it and the known ones; no task is created; a bad --notify-on likewise."""
    r = cli("run", "--cmd", "touch /tmp/should-not-exist", "--group", "fleet", "--notify", "hook,nope",
            config=env.cfg)
    assert r.returncode == 2
    assert "--notify: no channel named 'nope'" in r.stderr and "known: hook, ops-wecom" in r.stderr
    assert env.tasks() == 0
    bad = cli("run", "--cmd", "true", "--group", "fleet", "--notify", "hook", "--notify-on", "sometimes",
              config=env.cfg)
    assert bad.returncode == 2 and "--notify-on: 'sometimes' is not one of success, failure, finish" in bad.stderr
    alone = cli("run", "--cmd", "true", "--group", "fleet", "--notify-on", "success", config=env.cfg)
    assert alone.returncode == 2 and "--notify-on needs --notify" in alone.stderr
    assert env.tasks() == 0 and env.receiver.seen == []


def test_the_api_and_run_server_carry_the_tasks_notification(env: Env) -> None:
    """POST /api/v1/tasks with notify: the server checks the channels (422 before anything runs) and sends on the
    events asked for; `small-yi run --server --notify` goes the same way."""
    srv: Server = start_server(env.cfg)
    try:
        http = srv.client()
        target = {"group": "fleet"}
        bad = http.post("/api/v1/tasks", json={"target": target, "cmd": "true", "notify": {"channels": ["nope"]}})
        assert bad.status_code == 422
        err = bad.json()["error"]
        assert err["field"] == "notify.channels" and "no channel named 'nope'" in err["message"]
        wrong = http.post("/api/v1/tasks", json={"target": target, "cmd": "true",
                                                 "notify": {"channels": ["hook"], "on": ["sometimes"]}})
        assert wrong.status_code == 422
        assert http.get("/api/v1/tasks").json()["total"] == 0

        ok = http.post("/api/v1/tasks", json={"target": target, "cmd": "exit 4",
                                              "notify": {"channels": ["hook"], "on": ["failure"]}})
        assert ok.status_code == 201, ok.text
        task = ok.json()
        assert task["notify"] == {"channels": ["hook"], "on": ["failure"]}
        [msg] = wait_for(env, "/hook", 1)
        assert msg["status"] == "failure" and msg["data"]["task_id"] == task["id"]
        assert msg["data"]["created_by"] == "admin"
        quiet = http.post("/api/v1/tasks", json={"target": target, "cmd": "true", "notify": {"channels": ["hook"]}})
        assert quiet.status_code == 201

        r = cli("run", "--cmd", "true", "--hosts", "host-003", "--notify", "hook", "--notify-on", "finish",
                env={"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login(), "SMALLYI_CONFIG": "/nonexistent.yaml"})
        assert r.returncode == 0, r.stderr
        msgs = wait_for(env, "/hook", 2)
        assert [(m["status"], m["data"]["host_count"]) for m in msgs] == [("failure", 3), ("success", 1)]
        time.sleep(3)  # the watcher's next rounds send nothing more (the quiet success, nothing twice)
        assert len(env.messages("/hook")) == 2
        deliveries = http.get("/api/v1/notifications/deliveries", params={"channel": "hook"}).json()["items"]
        assert sorted(d["status"] for d in deliveries) == ["sent", "sent"]
    finally:
        srv.stop()
