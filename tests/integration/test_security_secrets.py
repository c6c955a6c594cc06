"""Secrets from the CLI: stored encrypted, listed without values, and the master key rotated in place with
every secret still readable afterwards and the rotation audited."""

from __future__ import annotations

import json
from pathlib import Path

from smallyi.audit.trail import AuditFilter
from smallyi.config import load_settings
from smallyi.runtime import Runtime
from support import cli, write_config


async def test_rotation_re_encrypts_every_secret_under_a_new_key(tmp_path: Path) -> None:
    """After `secrets rotate` the key file holds one new key, every secret decrypts, and the rotation is a record."""
    cfg = write_config(tmp_path)
    assert cli("secrets", "set", "bot", "--kind", "webhook", config=cfg, input="tok-123456789\n").returncode == 0
    assert cli("secrets", "set", "db-pass", "--kind", "password", config=cfg, input="pw-abcdefgh\n").returncode == 0
    listed = json.loads(cli("secrets", "list", "--output", "json", config=cfg).stdout)["items"]
    assert {i["name"] for i in listed} == {"bot", "db-pass"} and "tok-123456789" not in json.dumps(listed)
    old_key = listed[0]["key_id"]
    keyfile = tmp_path / "data" / "master.key"
    assert oct(keyfile.stat().st_mode & 0o777) == "0o600"
    r = cli("secrets", "rotate", config=cfg)
    assert r.returncode == 0 and "re-encrypted 2 secret(s)" in r.stdout, r.stderr
    lines = keyfile.read_text().splitlines()
    assert len(lines) == 1 and not lines[0].startswith(old_key)
    assert b"tok-123456789" not in (tmp_path / "data" / "small-yi.db").read_bytes()
    rt = await Runtime.open(load_settings(cfg), kind="cli")
    try:
        assert await rt.secrets.get("bot") == "tok-123456789"
        assert await rt.secrets.get("db-pass") == "pw-abcdefgh"
        assert {s.key_id for s in await rt.secrets.list()} == {lines[0].split(":")[0]}
        rec, _ = await rt.audit.search(AuditFilter(action="secrets.rotate"), limit=1, offset=0)
        assert rec and rec[0].detail["secrets"] == 2
    finally:
        await rt.close()


def test_a_key_from_the_environment_needs_the_new_key_on_stdin(tmp_path: Path) -> None:
    """With the master key in the environment, rotate refuses without --new-key-stdin, saying what to do."""
    import base64
    import os

    cfg = write_config(tmp_path)
    env = {"SMALLYI_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    assert cli("secrets", "set", "x", config=cfg, input="value-1234\n", env=env).returncode == 0
    r = cli("secrets", "rotate", config=cfg, env=env)
    assert r.returncode == 2 and "--new-key-stdin" in r.stderr
    new = base64.b64encode(os.urandom(32)).decode()
    assert cli("secrets", "rotate", "--new-key-stdin", config=cfg, env=env, input=new).returncode == 0
    r = cli("secrets", "list", config=cfg, env={"SMALLYI_MASTER_KEY": new})
    assert r.returncode == 0 and "x" in r.stdout
    assert not (tmp_path / "data" / "master.key").exists()
