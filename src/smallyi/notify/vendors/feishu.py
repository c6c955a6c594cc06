"""Feishu (飞书) custom bot: POST ``.../open-apis/bot/v2/hook/<token>`` a rich-text (post) message.

With signature verification (签名校验), the body carries ``timestamp`` (seconds, as text) and
``sign`` = base64 of HMAC-SHA256 keyed by ``"{timestamp}\\n{secret}"`` over an empty message.
Payload: ``{"msg_type": "post", "content": {"post": {"zh_cn": {"title", "content": [[{"tag": "text",
"text"}], ...]}}}}``; the answer is ``{"code": 0, "msg": "success"}`` (older bots: ``StatusCode``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from smallyi.notify.base import Channel, Message, NotifyError, Request, http_verdict, json_answer

#: 11232: the bot is over its rate (100 a minute, 5 a second)
_RATE_LIMITED = {11232}
#: Feishu refuses bodies over 20 KB
_MAX_TEXT = 18000


def sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class Feishu:
    kind = "feishu"

    def build(self, channel: Channel, message: Message, *, now: float) -> Request:
        lines: list[list[dict[str, Any]]] = [[{"tag": "text", "text": line}]
                                             for line in message.text[:_MAX_TEXT].splitlines()]
        if message.link:
            lines.append([{"tag": "a", "text": "details", "href": message.link}])
        if channel.options.get("at_all"):
            lines.append([{"tag": "at", "user_id": "all"}])
        payload: dict[str, Any] = {}
        if channel.secret:
            ts = int(now)
            payload.update(timestamp=str(ts), sign=sign(channel.secret, ts))
        payload.update(msg_type="post", content={"post": {"zh_cn": {"title": message.title, "content": lines}}})
        return Request.json(channel.url, payload)

    def check(self, status: int, body: bytes) -> None:
        http_verdict(status, body)
        answer = json_answer(body)
        code = answer.get("code", answer.get("StatusCode", 0))
        if code != 0:
            raise NotifyError(f"Feishu answered code {code}: {answer.get('msg', answer.get('StatusMessage', ''))}",
                              retry=code in _RATE_LIMITED, status_code=status)
