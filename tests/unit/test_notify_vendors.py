"""Each vendor's payload and signature, built purely from a message (checked against each vendor's rules)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest

from smallyi.notify.base import Channel, Message, NotifyError
from smallyi.notify.vendors import NOTIFIERS

MSG = Message(title="[small-yi] SOP disk #3 failed", text="started by alice\n- check: failed (exit 1)",
              status="failure", event="sop_run", link="http://console/runs/3", data={"run_id": 3})
NOW = 1_764_000_000.5


def body(kind: str, channel: Channel, msg: Message = MSG) -> tuple[str, dict, dict]:
    req = NOTIFIERS[kind].build(channel, msg, now=NOW)
    return req.url, json.loads(req.body), dict(req.headers)


def test_wecom_markdown_and_text_with_mentions() -> None:
    """WeCom gets msgtype markdown with content, or text with mentioned lists when someone is mentioned."""
    url, payload, headers = body("wecom", Channel("w", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"))
    assert url.endswith("key=K") and headers["Content-Type"].startswith("application/json")
    assert payload["msgtype"] == "markdown" and MSG.title in payload["markdown"]["content"]
    _, payload, _ = body("wecom", Channel("w", "wecom", "https://x/send?key=K", options={"mentioned_list": ["@all"]}))
    assert payload == {"msgtype": "text", "text": {"content": f"{MSG.title}\n{MSG.text}",
                                                   "mentioned_list": ["@all"], "mentioned_mobile_list": []}}


def test_wecom_content_is_cut_to_its_byte_limit() -> None:
    """WeCom markdown content stays under 4096 bytes, counting UTF-8 bytes."""
    long = Message(title="t", text="告警" * 3000)
    _, payload, _ = body("wecom", Channel("w", "wecom", "https://x/send?key=K"), long)
    assert len(payload["markdown"]["content"].encode()) <= 4096


def test_dingtalk_signature_in_the_query() -> None:
    """DingTalk: timestamp (ms) and sign = base64(HMAC-SHA256(secret, ts\\nsecret)), URL-encoded, in the query."""
    secret = "SEC000secret"
    url, payload, _ = body("dingtalk", Channel("d", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T",
                                               secret=secret, options={"at_mobiles": ["13800000000"]}))
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    ts = q["timestamp"][0]
    assert ts == str(int(NOW * 1000)) and q["access_token"] == ["T"]
    expect = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert q["sign"] == [expect]
    assert payload["msgtype"] == "markdown" and payload["markdown"]["title"] == MSG.title
    assert payload["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
    assert "@13800000000" in payload["markdown"]["text"]


def test_dingtalk_without_secret_adds_nothing() -> None:
    """Without a signing secret the URL is used as given."""
    url, _, _ = body("dingtalk", Channel("d", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T"))
    assert url == "https://oapi.dingtalk.com/robot/send?access_token=T"


def test_feishu_signature_in_the_body() -> None:
    """Feishu: timestamp (s) and sign = base64(HMAC-SHA256 keyed by ts\\nsecret over nothing), post content."""
    secret = "fs-secret"
    _, payload, _ = body("feishu", Channel("f", "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/X",
                                           secret=secret))
    ts = payload["timestamp"]
    assert ts == str(int(NOW))
    key = f"{ts}\n{secret}".encode()
    assert payload["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    post = payload["content"]["post"]["zh_cn"]
    assert payload["msg_type"] == "post" and post["title"] == MSG.title
    assert post["content"][0] == [{"tag": "text", "text": "started by alice"}]
    assert post["content"][-1] == [{"tag": "a", "text": "details", "href": MSG.link}]


def test_slack_blocks() -> None:
    """Slack gets fallback text and blocks: a header and an mrkdwn section."""
    _, payload, _ = body("slack", Channel("s", "slack", "https://hooks.slack.com/services/A/B/C"))
    assert payload["text"].startswith(MSG.title)
    assert payload["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": MSG.title, "emoji": True}}
    assert payload["blocks"][1]["text"]["type"] == "mrkdwn"


def test_webhook_signed_body() -> None:
    """A generic webhook signs timestamp + '.' + the exact body bytes with HMAC-SHA256 (hex)."""
    req = NOTIFIERS["webhook"].build(Channel("h", "webhook", "https://hooks.example/x", secret="k"), MSG, now=NOW)
    ts = req.headers["X-SmallYi-Timestamp"]
    expect = "sha256=" + hmac.new(b"k", f"{ts}.".encode() + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-SmallYi-Signature"] == expect
    doc = json.loads(req.body)
    assert doc["event"] == "sop_run" and doc["status"] == "failure" and doc["data"] == {"run_id": 3}


@pytest.mark.parametrize("kind, status, answer, retry", [
    ("wecom", 200, b'{"errcode":0,"errmsg":"ok"}', None),
    ("wecom", 200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', False),
    ("wecom", 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', True),
    ("dingtalk", 200, b'{"errcode":310000,"errmsg":"sign not match"}', False),
    ("dingtalk", 200, b'{"errcode":130101,"errmsg":"send too fast"}', True),
    ("feishu", 200, b'{"code":0,"msg":"success"}', None),
    ("feishu", 200, b'{"code":19021,"msg":"sign match fail"}', False),
    ("feishu", 200, b'{"StatusCode":0,"StatusMessage":"success"}', None),
    ("slack", 200, b"ok", None),
    ("slack", 404, b"no_service", False),
    ("webhook", 204, b"", None),
    ("webhook", 503, b"busy", True),
    ("webhook", 429, b"slow down", True),
])
def test_answers_are_judged(kind: str, status: int, answer: bytes, retry: bool | None) -> None:
    """Each vendor's error answers fail the delivery; rate limits and 5xx may be retried, the rest not."""
    check = NOTIFIERS[kind].check
    if retry is None:
        check(status, answer)
        return
    with pytest.raises(NotifyError) as e:
        check(status, answer)
    assert e.value.retry is retry
