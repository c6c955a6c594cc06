"""DingTalk (钉钉) custom robot: POST ``.../robot/send?access_token=...`` a markdown message.

With a signing secret (安全设置 "加签"), the URL also carries ``timestamp`` (milliseconds) and
``sign`` = URL-encoded base64 of HMAC-SHA256 over ``"{timestamp}\\n{secret}"`` keyed by the secret.
Payload: ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}}``;
the answer is ``{"errcode": 0, "errmsg": "ok"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

from smallyi.notify.base import Channel, Message, Request, clip_bytes, errcode_verdict

#: errcode 130101: sending too fast (20 a minute)
_RATE_LIMITED = {130101}


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter (already URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalk:
    kind = "dingtalk"

    def build(self, channel: Channel, message: Message, *, now: float) -> Request:
        url = channel.url
        if channel.secret:
            ts = int(now * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={sign(channel.secret, ts)}"
        text = f"### {message.title}\n\n" + message.text.replace("\n", "\n\n")
        if message.link:
            text += f"\n\n[details]({message.link})"
        mobiles = [str(m) for m in channel.options.get("at_mobiles", [])]
        if mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": message.title[:64], "text": clip_bytes(text, 18000)},
            "at": {"atMobiles": mobiles, "isAtAll": bool(channel.options.get("at_all", False))},
        }
        return Request.json(url, payload)

    def check(self, status: int, body: bytes) -> None:
        errcode_verdict("DingTalk", status, body, _RATE_LIMITED)
