"""SSH trust: host keys trusted on first use are pinned in the database, and a changed key makes the host
unreachable ("host key changed") with an audit record; the client key can live encrypted in the secret store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from smallyi.audit.trail import AuditFilter
from smallyi.auth.caller import Caller
from smallyi.auth.rbac import EVERY_HOST
from smallyi.config import parse_settings
from smallyi.errors import ConfigError
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.selectors import Selector
from smallyi.runtime import Runtime
from smallyi.storage.models import HostKeyPin
from smallyi.tasks.queries import ResultFilter
from smallyi.tasks.service import TaskRequest
from smallyi.testing import Behaviour, HostileFleet


async def _run(rt: Runtime, host: str) -> tuple[str, str]:
    tid = (await rt.tasks.submit(TaskRequest(Selector(hosts=(host,)), "echo hi"), Caller("t"))).task_id
    await rt.tasks.wait(tid)
    rows, _ = await rt.archive.results(ResultFilter(task=tid), scope=EVERY_HOST, limit=10, offset=0)
    return rows[0].status, rows[0].reason


async def test_a_changed_host_key_is_refused_and_audited(tmp_path: Path, hostile: HostileFleet) -> None:
    """First contact pins the key in the database; when the host shows another key it is unreachable with
    'host key changed', nothing runs there, and the audit trail records the change."""
    host = await hostile.start(Behaviour.SHELL, known=False)
    base = parse_settings(f"database:\n  source: {tmp_path}/h.db\nsecrets:\n  key_file: {tmp_path}/k\n",
                          base_dir=tmp_path)
    settings = base.model_copy(update={"ssh": hostile.ssh_settings(host_key_policy="accept-new", known_hosts=None)})
    rt = await Runtime.open(settings, kind="cli")
    try:
        await rt.inventory.upsert([HostSpec(name="h1", address="127.0.0.1", port=host.port)], source="manual")
        assert await _run(rt, "h1") == ("success", "")
        await rt.host_keys.drain()
        pins = await rt.host_keys.list()
        assert [p["host"] for p in pins] == [f"[127.0.0.1]:{host.port}"]
        other = hostile.other_key.export_public_key("openssh").decode().split()[1]
        async with rt.db.session.begin() as s:  # as if the host had been reinstalled (or impersonated)
            await s.execute(update(HostKeyPin).values(key=other))
    finally:
        await rt.close()
    commands_before = len(host.commands)
    rt = await Runtime.open(settings, kind="cli")
    try:
        status, reason = await _run(rt, "h1")
        assert status == "unreachable" and "host key changed" in reason and "hostkeys forget" in reason
        await rt.host_keys.drain()
        rec, _ = await rt.audit.search(AuditFilter(action="hostkey.changed"), limit=5, offset=0)
        assert rec and rec[0].target == f"[127.0.0.1]:{host.port}" and rec[0].result == "denied"
        assert len(host.commands) == commands_before
        await rt.host_keys.forget(f"[127.0.0.1]:{host.port}")
        assert await _run(rt, "h1") == ("success", "")
    finally:
        await rt.close()


async def test_a_changed_host_key_under_strict_is_refused_and_audited(tmp_path: Path, hostile: HostileFleet) -> None:
    """strict: a host showing a key other than its known_hosts entry is unreachable ('host key changed'),
    nothing runs there, and the audit trail records the change as under accept-new."""
    host = await hostile.start(Behaviour.WRONG_HOST_KEY)  # known_hosts lists the fleet's key, it shows another
    base = parse_settings(f"database:\n  source: {tmp_path}/h.db\nsecrets:\n  key_file: {tmp_path}/k\n",
                          base_dir=tmp_path)
    rt = await Runtime.open(base.model_copy(update={"ssh": hostile.ssh_settings(host_key_policy="strict")}), kind="cli")
    try:
        await rt.inventory.upsert([HostSpec(name="h1", address="127.0.0.1", port=host.port)], source="manual")
        status, reason = await _run(rt, "h1")
        assert status == "unreachable" and "host key changed" in reason
        await rt.host_keys.drain()
        rec, _ = await rt.audit.search(AuditFilter(action="hostkey.changed"), limit=5, offset=0)
        assert rec and rec[0].target == f"[127.0.0.1]:{host.port}" and rec[0].result == "denied"
        assert host.commands == []
        assert await rt.host_keys.list() == []  # strict pins nothing
    finally:
        await rt.close()


async def test_the_ssh_key_can_live_encrypted_in_the_secret_store(tmp_path: Path, hostile: HostileFleet) -> None:
    """With ssh.private_key_secret the engine logs in with the stored key (no key file needed); the database
    holds it only encrypted; a missing secret is a start-up error naming the setting."""
    host = await hostile.start(Behaviour.SHELL)
    base = parse_settings(f"database:\n  source: {tmp_path}/h.db\nsecrets:\n  key_file: {tmp_path}/k\n",
                          base_dir=tmp_path)
    rt = await Runtime.open(base, kind="cli")
    try:
        pem = hostile.key_path.read_text()
        await rt.secrets.put("fleet-key", pem, kind="ssh-key")
        await rt.inventory.upsert([HostSpec(name="h1", address="127.0.0.1", port=host.port)], source="manual")
    finally:
        await rt.close()
    assert b"PRIVATE KEY" not in (tmp_path / "h.db").read_bytes()
    ssh = hostile.ssh_settings(private_key=None, private_key_secret="fleet-key")
    rt = await Runtime.open(base.model_copy(update={"ssh": ssh}), kind="cli")
    try:
        assert await _run(rt, "h1") == ("success", "")
    finally:
        await rt.close()
    missing = hostile.ssh_settings(private_key=None, private_key_secret="nope")
    with pytest.raises(ConfigError, match="ssh.private_key_secret: no secret 'nope'"):
        await Runtime.open(base.model_copy(update={"ssh": missing}), kind="cli")


async def test_a_known_hosts_edit_is_read_without_a_restart(tmp_path: Path, hostile: HostileFleet) -> None:
    """As OpenSSH does: a line added to known_hosts while the server runs lets its host in at the next task,
    and a line removed refuses the next connection again (strict), without restarting the runtime. (A
    connection already open stays in the pool until ``ssh.pool_idle_timeout``, as an OpenSSH ControlMaster
    does; the test drops it to make the next task connect.)"""
    host = await hostile.start(Behaviour.SHELL, known=False)
    base = parse_settings(f"database:\n  source: {tmp_path}/h.db\nsecrets:\n  key_file: {tmp_path}/k\n",
                          base_dir=tmp_path)
    rt = await Runtime.open(base.model_copy(update={"ssh": hostile.ssh_settings(host_key_policy="strict")}), kind="cli")
    try:
        await rt.inventory.upsert([HostSpec(name="h1", address="127.0.0.1", port=host.port)], source="manual")
        status, reason = await _run(rt, "h1")
        assert status == "unreachable" and "unknown host key" in reason
        kind, data = hostile.host_key.export_public_key("openssh").decode().split()[:2]
        before = hostile.known_hosts_path.read_text()
        hostile.known_hosts_path.write_text(before + f"[127.0.0.1]:{host.port} {kind} {data}\n")
        assert await _run(rt, "h1") == ("success", "")
        hostile.known_hosts_path.write_text(before)
        host.drop_connections()
        status, reason = await _run(rt, "h1")
        assert status == "unreachable" and "unknown host key" in reason
    finally:
        await rt.close()
