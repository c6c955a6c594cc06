"""Secrets from the CLI: stored encrypted, listed without values, and the master key rotated in place with
every secret and notification channel still readable afterwards and the rotation audited."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sqlite3
from pathlib import Path
from typing import Any

from test_notify import Receiver, Seen

from smallyi.app import create_app
from smallyi.audit.trail import AuditFilter
from smallyi.config import load_settings
from smallyi.execution.connectors.fake import FakeConnector
from smallyi.runtime import Runtime
from support import ADMIN_PASSWORD, cli, starlette_test_client, write_config

TestClient = starlette_test_client()


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


SIGNING = "SEC-sign-0123456789"


def _dingtalk_checks_its_signature(seen: Seen) -> tuple[int, Any]:
    """Answer as DingTalk does: errcode 0 only when the request is signed with ``SIGNING``."""
    ts = seen.query["timestamp"][0]
    want = base64.b64encode(hmac.new(SIGNING.encode(), f"{ts}\n{SIGNING}".encode(), hashlib.sha256).digest())
    ok = seen.query.get("sign", [""])[0] == want.decode()
    return 200, {"errcode": 0 if ok else 310000, "errmsg": "ok" if ok else "sign not match"}


def _as_admin(c: Any) -> None:
    r = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["Authorization"] = f"Bearer {r.json()['token']}"


def _app(cfg: Path) -> Any:
    return create_app(load_settings(cfg), connectors={"ssh": FakeConnector(), "local": FakeConnector()})


async def _secret(cfg: Path, name: str) -> str:
    rt = await Runtime.open(load_settings(cfg), kind="cli")
    try:
        return await rt.secrets.get(name)
    finally:
        await rt.close()


def test_rotation_re_encrypts_notification_channels_too(tmp_path: Path) -> None:
    """A channel added through the API still decrypts after `secrets rotate`: its signed test message is
    accepted, its ciphertexts name the new key, and the secrets table still reads back."""
    cfg = write_config(tmp_path)
    assert cli("secrets", "set", "bot", "--kind", "webhook", config=cfg, input="tok-123456789\n").returncode == 0
    receiver = Receiver(answer=_dingtalk_checks_its_signature)
    try:
        with TestClient(_app(cfg)) as c:
            _as_admin(c)
            r = c.post("/api/v1/notifications/channels", json={
                "name": "ding", "kind": "dingtalk", "url": f"{receiver.url}/robot/send?access_token=TOK",
                "secret": SIGNING})
            assert r.status_code == 201 and r.json()["has_secret"] is True, r.text
            assert c.post("/api/v1/notifications/channels/ding/test").json()["status"] == "sent"
        r = cli("secrets", "rotate", config=cfg)
        assert r.returncode == 0, r.stderr
        assert "re-encrypted 1 secret(s), 1 notification channel(s)" in r.stdout, r.stdout
        new_id = (tmp_path / "data" / "master.key").read_text().split(":", 1)[0]
        with sqlite3.connect(tmp_path / "data" / "small-yi.db") as db:
            url_cipher, secret_cipher = db.execute(
                "SELECT url_cipher, secret_cipher FROM notify_channels WHERE name = 'ding'").fetchone()
        assert url_cipher.startswith(f"v1:{new_id}:") and secret_cipher.startswith(f"v1:{new_id}:")
        with TestClient(_app(cfg)) as c:
            _as_admin(c)
            assert c.get("/api/v1/notifications/channels/ding").json()["has_secret"] is True
            d = c.post("/api/v1/notifications/channels/ding/test").json()
            assert d["status"] == "sent", d
            rec = c.get("/api/v1/audit", params={"action": "secrets.rotate"}).json()["items"][0]
            assert rec["detail"]["reencrypted"] == {"secret": 1, "notification channel": 1}
        assert len(receiver.seen) == 2 and receiver.seen[1].query["access_token"] == ["TOK"]
        assert asyncio.run(_secret(cfg, "bot")) == "tok-123456789"
    finally:
        receiver.close()


def test_a_rotation_that_cannot_read_one_row_changes_nothing(tmp_path: Path) -> None:
    """If one stored ciphertext does not decrypt, the rotation fails saying which, and every secret stays
    under the old key, still readable: one transaction over every store, all or nothing."""
    cfg = write_config(tmp_path)
    assert cli("secrets", "set", "bot", config=cfg, input="tok-123456789\n").returncode == 0
    with TestClient(_app(cfg)) as c:
        _as_admin(c)
        for name in ("pager-1", "pager-2"):
            assert c.post("/api/v1/notifications/channels", json={
                "name": name, "kind": "webhook", "url": f"http://127.0.0.1/{name}"}).status_code == 201
    # pager-2's URL moved into pager-1's row: it is bound to pager-2's name, so it does not decrypt there
    with sqlite3.connect(tmp_path / "data" / "small-yi.db") as db:
        db.execute("UPDATE notify_channels SET url_cipher = (SELECT url_cipher FROM notify_channels "
                   "WHERE name = 'pager-2') WHERE name = 'pager-1'")
    old_id = json.loads(cli("secrets", "list", "--output", "json", config=cfg).stdout)["items"][0]["key_id"]
    r = cli("secrets", "rotate", config=cfg)
    assert r.returncode == 2 and "notify:pager-1:url" in r.stderr and "does not decrypt" in r.stderr, r.stderr
    listed = json.loads(cli("secrets", "list", "--output", "json", config=cfg).stdout)["items"]
    assert [i["key_id"] for i in listed] == [old_id]
    assert asyncio.run(_secret(cfg, "bot")) == "tok-123456789"


HOOK_SECRET = "gh-hook-3f9a71c2"
TICKET_AUTH = "Bearer tk-77a0c3e1"


def test_config_credentials_can_be_stored_secrets(tmp_path: Path) -> None:
    """`secret:NAME` in the config's credential fields reads the stored secret: a missing one stops the
    start naming the field and the command; `secrets set` works before they exist; once stored, the
    signed chat robot, the webhook secret and the ticket header use the values, which no answer shows."""
    from smallyi.gitops import webhook
    from smallyi.secrets import redact

    receiver = Receiver(answer=_dingtalk_checks_its_signature)
    extra = (f"notify:\n  retries: 0\n  channels:\n    ding:\n      kind: dingtalk\n"
             f"      url: \"secret:ding-url\"\n      secret: \"secret:ding-sign\"\n"
             f"tickets:\n  url: {receiver.url}/api/tickets\n  headers:\n    Authorization: \"secret:ticket-auth\"\n"
             f"gitops:\n  webhook_secret: \"secret:gh-hook\"\n")
    cfg = write_config(tmp_path, extra=extra)
    try:
        r = cli("audit", "verify", config=cfg)
        assert r.returncode != 0 and "gitops.webhook_secret: no stored secret 'gh-hook'" in r.stderr, r.stderr
        assert "small-yi secrets set gh-hook" in r.stderr
        for name, value in (("gh-hook", HOOK_SECRET), ("ding-url", f"{receiver.url}/robot/send?access_token=TOK"),
                            ("ding-sign", SIGNING), ("ticket-auth", TICKET_AUTH)):
            r = cli("secrets", "set", name, "--kind", "webhook", config=cfg, input=value + "\n")
            assert r.returncode == 0, r.stderr
        assert cli("audit", "verify", config=cfg).returncode == 0
        with TestClient(_app(cfg)) as c:
            _as_admin(c)
            sent = c.post("/api/v1/notifications/channels/ding/test").json()
            assert sent["status"] == "sent", sent  # the robot checked the signature made with ding-sign
            assert receiver.seen[-1].query["access_token"] == ["TOK"]
            shown = c.get("/api/v1/notifications/channels/ding").text + c.get("/api/v1/gitops/status").text
            assert "TOK" not in shown and SIGNING not in shown and HOOK_SECRET not in shown
            body = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()
            good = c.post("/api/v1/gitops/webhook", content=body, headers={
                "X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign_github(HOOK_SECRET, body)})
            assert good.status_code == 200 and good.json()["status"] == "ignored", good.text  # signature held
            literal = c.post("/api/v1/gitops/webhook", content=body, headers={
                "X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign_github("secret:gh-hook", body)})
            assert literal.status_code == 401
            rt = c.app.state.smallyi  # type: ignore[attr-defined]
            assert rt.settings.tickets.headers["Authorization"] == TICKET_AUTH
            assert TICKET_AUTH not in redact.shared().redact(f"sending {TICKET_AUTH}")
    finally:
        receiver.close()


def test_a_reference_without_a_name_is_a_config_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, extra="tickets:\n  url: \"secret: \"\n")
    r = cli("audit", "verify", config=cfg)
    assert r.returncode != 0 and "tickets.url: secret: needs the name of a stored secret" in r.stderr, r.stderr
