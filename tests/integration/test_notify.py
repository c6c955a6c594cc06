"""Notifications end to end: each vendor against a local HTTP receiver that checks its payload and signature.

The receiver here (``Receiver``) is also the test ticket service and webhook target of the SOP tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from smallyi.auth.caller import Caller
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from smallyi.inventory.selectors import Selector
from smallyi.notify.base import Message
from smallyi.notify.tasks import TaskWatcher
from smallyi.runtime import Runtime
from smallyi.sop import automation
from smallyi.storage.models import NotifyChannel
from smallyi.tasks.service import TaskRequest


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Seen], tuple[int, Any]]


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 (port 0) that records every request and answers with ``answer``."""

    answer: Answer = field(default=lambda seen: (200, {"errcode": 0, "errmsg": "ok"}))
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urllib.parse.urlsplit(self.path)
                seen = Seen(self.command, parts.path, urllib.parse.parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                outer.seen.append(seen)
                status, payload = outer.answer(seen)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PUT = do_GET = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def config(tmp: Path, extra: str = "") -> str:
    return (f"database:\n  source: {tmp}/n.db\nsecrets:\n  key_file: {tmp}/master.key\n"
            f"notify:\n  retries: 2\n  backoff: 50ms\n  timeout: 5s\n{extra}")


@pytest.fixture
async def auto(tmp_path: Path) -> AsyncIterator[automation.Automation]:
    rt = await Runtime.open(parse_settings(config(tmp_path), base_dir=tmp_path), kind="cli",
                            connectors={"ssh": FakeConnector()})
    a = automation.build(rt)
    a.rt = rt  # type: ignore[attr-defined]
    yield a
    await a.close()
    await rt.close()


MSG = Message(title="[small-yi] SOP disk #7 failed", text="started by alice\n- check_disk: failed", status="failure",
              event="sop_run", data={"run_id": 7})


async def send(auto: automation.Automation, name: str, kind: str, url: str, secret: str = "",
               **options: Any) -> dict[str, Any]:
    await auto.notify.channels.put(name, kind=kind, url=url, secret=secret, options=options, create=True)
    return await auto.notify.send_now(name, MSG, key=f"test:{name}")


async def test_wecom_group_bot(auto: automation.Automation, receiver: Receiver) -> None:
    """WeCom gets its markdown message at the bot URL, key in the query; errcode 0 is sent."""
    d = await send(auto, "wecom", "wecom", f"{receiver.url}/cgi-bin/webhook/send?key=KEY1")
    assert d["status"] == "sent" and d["attempts"] == 1
    seen = receiver.seen[0]
    assert seen.path == "/cgi-bin/webhook/send" and seen.query == {"key": ["KEY1"]}
    body = seen.json()
    assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
    assert MSG.title in body["markdown"]["content"] and "check_disk" in body["markdown"]["content"]


async def test_dingtalk_signed(auto: automation.Automation, receiver: Receiver) -> None:
    """DingTalk's receiver recomputes the signature from timestamp and secret, as DingTalk does."""
    secret = "SECabc123"

    def verify(seen: Seen) -> tuple[int, Any]:
        ts = seen.query["timestamp"][0]
        want = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest())
        ok = seen.query["sign"][0] == want.decode()
        return 200, {"errcode": 0 if ok else 310000, "errmsg": "ok" if ok else "sign not match"}

    receiver.answer = verify
    d = await send(auto, "ding", "dingtalk", f"{receiver.url}/robot/send?access_token=TOK", secret=secret,
                   at_all=True)
    assert d["status"] == "sent", d
    body = receiver.seen[0].json()
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    assert body["at"]["isAtAll"] is True and receiver.seen[0].query["access_token"] == ["TOK"]


async def test_dingtalk_wrong_secret_fails_without_retry(auto: automation.Automation, receiver: Receiver) -> None:
    """A signature DingTalk refuses is a failed delivery, recorded with DingTalk's words, not retried."""
    receiver.answer = lambda seen: (200, {"errcode": 310000, "errmsg": "sign not match"})
    d = await send(auto, "ding2", "dingtalk", f"{receiver.url}/robot/send?access_token=T", secret="wrong")
    assert d["status"] == "failed" and d["attempts"] == 1 and "sign not match" in d["last_error"]


async def test_feishu_signed(auto: automation.Automation, receiver: Receiver) -> None:
    """Feishu's receiver checks timestamp and sign in the body and the post structure."""
    secret = "feishu-secret"

    def verify(seen: Seen) -> tuple[int, Any]:
        body = seen.json()
        key = f"{body['timestamp']}\n{secret}".encode()
        ok = body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return 200, {"code": 0, "msg": "success"} if ok else {"code": 19021, "msg": "sign match fail"}

    receiver.answer = verify
    d = await send(auto, "fs", "feishu", f"{receiver.url}/open-apis/bot/v2/hook/abc", secret=secret)
    assert d["status"] == "sent", d
    body = receiver.seen[0].json()
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == MSG.title and all(isinstance(line, list) for line in post["content"])


async def test_slack_incoming_webhook(auto: automation.Automation, receiver: Receiver) -> None:
    """Slack gets text and blocks; its plain `ok` answer is success."""
    receiver.answer = lambda seen: (200, b"ok")
    d = await send(auto, "slack", "slack", f"{receiver.url}/services/T0/B0/XX")
    assert d["status"] == "sent"
    body = receiver.seen[0].json()
    assert body["text"].startswith(MSG.title) and [b["type"] for b in body["blocks"]] == ["header", "section"]


async def test_generic_webhook_signed(auto: automation.Automation, receiver: Receiver) -> None:
    """A generic webhook's receiver verifies X-SmallYi-Signature over timestamp and the raw body."""
    def verify(seen: Seen) -> tuple[int, Any]:
        ts = seen.headers["x-smallyi-timestamp"]
        want = "sha256=" + hmac.new(b"hook-key", f"{ts}.".encode() + seen.body, hashlib.sha256).hexdigest()
        return (204, b"") if seen.headers["x-smallyi-signature"] == want else (401, b"bad signature")

    receiver.answer = verify
    d = await send(auto, "hook", "webhook", f"{receiver.url}/hooks/smallyi", secret="hook-key")
    assert d["status"] == "sent", d
    doc = receiver.seen[0].json()
    assert doc["event"] == "sop_run" and doc["status"] == "failure" and doc["data"] == {"run_id": 7}


async def test_retries_with_backoff_then_success(auto: automation.Automation, receiver: Receiver) -> None:
    """A 503 is retried after a pause; the second attempt's success is what the delivery records."""
    answers = iter([(503, b"busy"), (200, {"errcode": 0})])
    receiver.answer = lambda seen: next(answers)
    d = await send(auto, "flaky", "wecom", f"{receiver.url}/send?key=K")
    assert d["status"] == "sent" and d["attempts"] == 2 and len(receiver.seen) == 2


async def test_failure_is_recorded_and_never_raises(auto: automation.Automation, receiver: Receiver) -> None:
    """A channel that keeps failing ends `failed` after the retries, visible in the deliveries; notify never raises."""
    receiver.answer = lambda seen: (500, b"down")
    await auto.notify.channels.put("down", kind="webhook", url=f"{receiver.url}/x", create=True)
    ids = await auto.notify.notify(["down", "no-such-channel"], MSG, key="sop_run:7:failure")
    await auto.notify.drain()
    items = {d["channel"]: d for d in await auto.notify.deliveries()}
    assert len(ids) == 2 and len(receiver.seen) == 3  # 1 + 2 retries
    assert items["down"]["status"] == "failed" and items["down"]["attempts"] == 3
    assert "HTTP 500" in items["down"]["last_error"]
    assert items["no-such-channel"]["status"] == "failed" and "no notification channel" in \
        items["no-such-channel"]["last_error"]


async def test_unreachable_channel_is_a_failed_delivery(auto: automation.Automation) -> None:
    """A refused connection is retried, then recorded as failed with the reason."""
    d = await send(auto, "nowhere", "slack", "http://127.0.0.1:9/none")
    assert d["status"] == "failed" and d["attempts"] == 3 and "Connect" in d["last_error"]


async def test_one_delivery_per_event_and_channel(auto: automation.Automation, receiver: Receiver) -> None:
    """The same event key sent twice (two replicas) goes out once."""
    await auto.notify.channels.put("once", kind="wecom", url=f"{receiver.url}/s?key=K", create=True)
    first = await auto.notify.notify(["once"], MSG, key="sop_run:9:failure")
    second = await auto.notify.notify(["once"], MSG, key="sop_run:9:failure")
    await auto.notify.drain()
    assert len(first) == 1 and second == [] and len(receiver.seen) == 1


async def test_channel_secrets_are_encrypted_and_never_shown(auto: automation.Automation, receiver: Receiver) -> None:
    """The URL and secret are stored encrypted; the API's view shows the host and whether a secret is set."""
    shown = await auto.notify.channels.put("enc", kind="dingtalk", url=f"{receiver.url}/robot/send?access_token=SECRET-T",
                                           secret="SEC-very-secret", create=True)
    assert "SECRET-T" not in json.dumps(shown, default=str) and shown["has_secret"] is True
    async with auto.notify.db.session() as s:
        row = await s.scalar(select(NotifyChannel).where(NotifyChannel.name == "enc"))
    assert row is not None and "SECRET-T" not in row.url_cipher and "very-secret" not in row.secret_cipher


async def test_config_channels_are_read_only(tmp_path: Path, receiver: Receiver) -> None:
    """Channels from the config send like the others and cannot be replaced through the API."""
    from smallyi.errors import Conflict

    extra = f"  channels:\n    ops:\n      kind: wecom\n      url: {receiver.url}/send?key=CFG\n"
    rt = await Runtime.open(parse_settings(config(tmp_path, extra), base_dir=tmp_path), kind="cli")
    a = automation.build(rt)
    try:
        d = await a.notify.send_now("ops", MSG, key="cfg")
        assert d["status"] == "sent" and receiver.seen[0].query == {"key": ["CFG"]}
        with pytest.raises(Conflict, match="config"):
            await a.notify.channels.put("ops", kind="slack", url="http://127.0.0.1/x")
        assert [c["source"] for c in await a.notify.channels.list()] == ["config"]
    finally:
        await a.close()
        await rt.close()


async def test_task_rule_notifies_finished_tasks(tmp_path: Path, receiver: Receiver) -> None:
    """notify.tasks tells its channels about ad-hoc tasks that fail, once, and not about those that succeed."""
    extra = (f"  channels:\n    ops:\n      kind: webhook\n      url: {receiver.url}/hook\n"
             "  tasks:\n    channels: [ops]\n    on: [failure]\n")
    from smallyi.execution.connectors.fake import FakeHost

    fake = FakeConnector(lambda host, cmd: FakeHost(exit_code=3 if "bad" in cmd else 0))
    rt = await Runtime.open(parse_settings(config(tmp_path, extra), base_dir=tmp_path), kind="cli",
                            connectors={"ssh": fake, "local": fake})
    a = automation.build(rt)
    try:
        watcher = TaskWatcher(rt.db, rt.settings.notify, a.notify, interval=0.1)
        for cmd in ("good", "bad"):
            tid = (await rt.tasks.submit(TaskRequest(Selector(hosts=("local",)), cmd), Caller("alice"))).task_id
            await rt.tasks.wait(tid)
        assert await watcher.check() == 1
        assert await watcher.check() == 0
        await a.notify.drain()
        doc = receiver.seen[0].json()
        assert doc["event"] == "task" and doc["status"] == "failure" and doc["data"]["command"] == "bad"
    finally:
        await a.close()
        await rt.close()
