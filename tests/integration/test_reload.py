"""Reloading the config of a running server (SIGHUP, `small-yi reload`, POST /api/v1/admin/reload): users,
policy, notification channels and SSH settings apply at once, what needs a restart is named and kept,
and a file the server refuses changes nothing. Real servers, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_notify import Receiver

from smallyi.cli import pidfile
from smallyi.testing import Fleet
from support import ADMIN_HASH, ADMIN_PASSWORD, Server, cli, free_port, start_server, write_config


def _users(*extra: str) -> str:
    rows = [f'    - {{username: admin, password_hash: "{ADMIN_HASH}"}}\n']
    rows += [f'    - {{username: {name}, password_hash: "{ADMIN_HASH}", role: {role}}}\n'
             for name, role in (e.split(":") for e in extra)]
    return "auth:\n  users:\n" + "".join(rows)


def _edit(cfg: Path, *, users: str, extra: str = "") -> None:
    write_config(cfg.parent, users=users, extra=extra)


def _hup(srv: Server) -> dict[str, Any]:
    """SIGHUP to the server, and the report of the reload it did after it."""
    since = time.time_ns()
    os.kill(srv.proc.pid, signal.SIGHUP)
    report = pidfile.wait_report(srv.config.parent / "data" / "small-yi.pid", since_ns=since, timeout=30)
    assert report is not None, srv.output()[-2000:]
    return report


def _run(c: httpx.Client, host: str, cmd: str) -> dict[str, Any]:
    """Run ``cmd`` on ``host``; its result (status, reason, stdout)."""
    r = c.post("/api/v1/tasks", json={"target": {"hosts": [host]}, "cmd": cmd, "timeout": "20s"})
    assert r.status_code == 201, r.text
    task = r.json()["id"]
    deadline = time.monotonic() + 60
    while c.get(f"/api/v1/tasks/{task}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return dict(c.get(f"/api/v1/tasks/{task}/results").json()["items"][0])


def _login(srv: Server, user: str) -> int:
    return httpx.post(f"{srv.url}/api/v1/auth/login", json={"username": user, "password": ADMIN_PASSWORD}).status_code


def _audit(c: httpx.Client) -> list[dict[str, Any]]:
    return list(c.get("/api/v1/audit", params={"action": "config.reload"}).json()["items"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_sighup_applies_users_policy_and_channels(tmp_path: Path, receiver: Receiver) -> None:
    """After an edit and SIGHUP: a new user logs in, a new policy rule refuses a command that ran before, a
    channel's new URL gets the next message; the reload is audited without the channel's URL."""
    channel = "notify:\n  channels:\n    ops: {{kind: webhook, url: \"{}\"}}\n"
    cfg = write_config(tmp_path, users=_users(), extra=channel.format(f"{receiver.url}/old-hook-a1b2c3"))
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            assert _run(c, "local", "uname")["status"] == "success"
            assert _login(srv, "bob") == 401
            assert c.post("/api/v1/notifications/channels/ops/test").status_code == 200
            rule = "policy:\n  rules:\n    - {name: no-uname, deny: [uname], reason: uname is off limits}\n"
            _edit(cfg, users=_users("bob:viewer"),
                  extra=channel.format(f"{receiver.url}/new-hook-d4e5f6") + rule)
            report = _hup(srv)
            assert report["status"] == "reloaded" and report["via"] == "signal" and report["by"] == "signal"
            assert report["applied"] == ["auth.users", "policy.rules", "notify.channels"] and report["restart"] == []
            assert _login(srv, "bob") == 200
            refused = c.post("/api/v1/tasks", json={"target": {"hosts": ["local"]}, "cmd": "uname"})
            assert refused.status_code == 403 and "uname is off limits" in refused.json()["error"]["message"]
            assert c.post("/api/v1/notifications/channels/ops/test").status_code == 200
            assert [s.path for s in receiver.seen] == ["/old-hook-a1b2c3", "/new-hook-d4e5f6"]
            rec = _audit(c)[0]
            assert rec["actor"] == "signal" and rec["result"] == "ok"
            assert rec["detail"]["applied"] == ["auth.users", "policy.rules", "notify.channels"]
            assert "hook" not in json.dumps(rec)
    finally:
        srv.stop()


def test_reload_names_what_needs_a_restart_and_a_refused_file_changes_nothing(tmp_path: Path) -> None:
    """`small-yi reload`: a new listen address is reported as needing a restart (old -> new) and the server
    stays where it was; a file the server refuses (an unknown role in a rule) changes nothing, not even its
    valid parts, and says why with exit status 2; so does a file that is not YAML, and SIGHUP with it
    leaves the server running. With no server running, the command says so."""
    cfg = write_config(tmp_path, users=_users())
    srv = start_server(cfg)
    try:
        other = free_port()
        _edit(cfg, users=_users("carol:operator"), extra=f"server:\n  listen: \"127.0.0.1:{other}\"\n")
        r = cli("reload", config=cfg)
        assert r.returncode == 0, r.stderr
        assert "applied:\n  auth.users: added carol\n" in r.stdout
        assert f"needs a restart:\n  server.listen: :8080 -> 127.0.0.1:{other}" in r.stdout
        assert "socket is bound when it starts" in r.stdout
        assert _login(srv, "carol") == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{other}/healthz")
        again = json.loads(cli("reload", "-o", "json", config=cfg).stdout)
        assert again["status"] == "reloaded" and again["applied"] == []
        assert [c["key"] for c in again["restart"]] == ["server.listen"] and again["by"].startswith("cli:")

        bad_rule = "policy:\n  rules:\n    - {deny: [reboot], roles: [nosuchrole]}\n"
        _edit(cfg, users=_users("carol:operator", "dave:viewer"), extra=bad_rule)
        r = cli("reload", config=cfg)
        assert r.returncode == 2 and "reload refused, nothing changed" in r.stderr
        assert f"{cfg.resolve()}: policy.rules[0].roles: unknown role 'nosuchrole'" in r.stderr
        assert _login(srv, "dave") == 401 and _login(srv, "carol") == 200

        cfg.write_text(cfg.read_text() + "auth: [unclosed\n")
        r = cli("reload", config=cfg)
        assert r.returncode == 2 and "YAML syntax error" in r.stderr and "no server was asked" in r.stderr
        report = _hup(srv)
        assert report["status"] == "refused" and "YAML syntax error" in report["error"]
        assert httpx.get(f"{srv.url}/healthz").status_code == 200 and _login(srv, "carol") == 200
        with srv.client() as c:
            assert [a["result"] for a in _audit(c)[:4]] == ["refused", "refused", "ok", "ok"]
    finally:
        srv.stop()
    _edit(cfg, users=_users())
    r = cli("reload", config=cfg)
    assert r.returncode == 2 and "no small-yi server is running for this config" in r.stderr


def test_reload_through_the_api_is_for_admins(tmp_path: Path) -> None:
    """`small-yi reload --server URL --token T` reloads through the API as the token's user (audited as
    them); a viewer's token is refused for lack of config.reload."""
    cfg = write_config(tmp_path, users=_users("vera:viewer"))
    srv = start_server(cfg)
    try:
        _edit(cfg, users=_users("vera:viewer"), extra="execution:\n  default_timeout: 5s\n")
        r = cli("reload", "--server", srv.url, "--token", srv.login(), "-o", "json")
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert (data["status"], data["by"], data["via"]) == ("reloaded", "admin", "api")
        assert data["changed"] == [{"key": "execution.default_timeout", "detail": "1m -> 5s"}]
        refused = cli("reload", "--server", srv.url, "--token", srv.login("vera"))
        assert refused.returncode == 2 and "config.reload" in refused.stderr
        with srv.client() as c:
            rec = _audit(c)[0]
            assert (rec["actor"], rec["source"], rec["detail"]["applied"]) == \
                ("admin", "api", ["execution.default_timeout"])
    finally:
        srv.stop()


def test_a_new_connect_timeout_applies_to_the_next_connection(tmp_path: Path) -> None:
    """ssh.connect_timeout reloaded: the next connection to a host that never answers gives up after the new
    time, as its reason says."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # TCP connects, no SSH banner ever comes
    port = silent.getsockname()[1]
    cfg = write_config(tmp_path, users=_users(), extra="ssh:\n  connect_timeout: 3s\n")
    r = cli("hosts", "add", "mute", "--address", "127.0.0.1", "--port", str(port), config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            assert _run(c, "mute", "true")["reason"].endswith("timed out after 3s")
            _edit(cfg, users=_users(), extra="ssh:\n  connect_timeout: 1s\n")
            assert cli("reload", config=cfg).returncode == 0
            result = _run(c, "mute", "true")
            assert result["status"] == "unreachable" and result["reason"].endswith("timed out after 1s")
    finally:
        srv.stop()
        silent.close()


@pytest.mark.fleet
def test_ssh_user_and_trust_changes_reach_the_next_connection(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """A reloaded ssh.user logs in where the old one could not; a reloaded known_hosts that no longer lists
    the host refuses it, although a connection made under the old one is pooled (it is not reused)."""
    name, address = ssh_fleet.hosts[19]
    ssh = ssh_fleet.ssh_yaml()
    cfg = write_config(tmp_path, users=_users(), extra=ssh.replace(f"user: {ssh_fleet.user}", "user: nobody-here"))
    r = cli("hosts", "add", name, "--address", address, "--port", str(ssh_fleet.port), config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            first = _run(c, name, "whoami")
            assert first["status"] == "unreachable" and "user nobody-here" in first["reason"]
            _edit(cfg, users=_users(), extra=ssh)
            assert _hup(srv)["applied"] == ["ssh.user"]
            ok = _run(c, name, "whoami")
            assert ok["status"] == "success" and ok["stdout"].strip() == ssh_fleet.user
            (tmp_path / "empty_known_hosts").write_text("")
            _edit(cfg, users=_users(), extra=ssh.replace(str(ssh_fleet.known_hosts), str(tmp_path / "empty_known_hosts")))
            assert _hup(srv)["applied"] == ["ssh.known_hosts"]
            refused = _run(c, name, "whoami")
            assert refused["status"] == "unreachable" and "unknown host key" in refused["reason"]
    finally:
        srv.stop()


async def test_a_reload_in_process_resizes_the_engine_rereads_secrets_and_a_refusal_keeps_everything(
        tmp_path: Path) -> None:
    """Through the runtime itself: a new execution.max_concurrency resizes the engine's session slots, a
    secret behind a `secret:NAME` channel URL is read again (reported as a changed channel, its value
    nowhere in the report), and a refused file leaves the running settings object untouched."""
    from smallyi import reloader
    from smallyi.config import load_settings
    from smallyi.execution.connectors.fake import FakeConnector
    from smallyi.runtime import Runtime
    from smallyi.sop import automation

    channel = "notify:\n  channels:\n    ops: {kind: webhook, url: \"secret:ops-url\"}\n"
    cfg = write_config(tmp_path, users=_users(), extra=channel)
    rt = await Runtime.open(load_settings(cfg), kind="cli", references=False,
                            connectors={"ssh": FakeConnector()})
    await rt.secrets.put("ops-url", "https://hooks.example/first-3f9a")
    await rt.close()
    rt = await Runtime.open(load_settings(cfg), kind="server", connectors={"ssh": FakeConnector()})
    try:
        r = reloader.Reloader(rt, cfg)
        await rt.secrets.put("ops-url", "https://hooks.example/second-8c1d")
        _edit(cfg, users=_users(), extra=channel + "execution:\n  max_concurrency: 7\n")
        report = await r.reload(by="test", via="api")
        assert report.status == "reloaded", report.message()
        assert [(c.key, c.detail) for c in report.changes] == [("execution.max_concurrency", "500 -> 7"),
                                                               ("notify.channels", "changed ops")]
        assert "8c1d" not in json.dumps(report.to_dict())
        assert rt.engine.stats()["max_concurrency"] == 7
        assert (await automation.of(rt).notify.channels.get("ops")).url.endswith("second-8c1d")
        before = rt.settings
        _edit(cfg, users=_users("eve:nosuchrole"), extra="execution:\n  max_concurrency: 9\n")
        refused = await r.reload(by="test", via="api")
        assert refused.status == "refused" and "user 'eve'" in refused.error and "nosuchrole" in refused.error
        assert rt.settings is before and rt.engine.stats()["max_concurrency"] == 7
        assert (await r.reload(by="test", via="api")).status == "refused"  # still, and still nothing changed
    finally:
        await rt.close()
