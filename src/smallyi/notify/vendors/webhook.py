"""A generic JSON webhook: small-yi's own event shape, signed like GitHub's webhooks when given a secret.

Body: ``{"event", "status", "title", "text", "link", "data", "sent_at"}``. With a secret the request
carries ``X-SmallYi-Timestamp`` (Unix seconds) and ``X-SmallYi-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``"{timestamp}." + body`` keyed by the secret (a receiver should refuse timestamps
older than a few minutes). Any 2xx is success.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from smallyi.notify.base import Channel, Message, Request, http_verdict
from smallyi.timestamps import from_unix


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    kind = "webhook"

    def build(self, channel: Channel, message: Message, *, now: float) -> Request:
        payload = {
            "event": message.event, "status": message.status, "title": message.title, "text": message.text,
            "link": message.link, "data": dict(message.data),
            "sent_at": from_unix(now),
        }
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-SmallYi-Event": message.event or "event"}
        if channel.secret:
            ts = int(now)
            headers.update({"X-SmallYi-Timestamp": str(ts), "X-SmallYi-Signature": signature(channel.secret, ts, body)})
        return Request(channel.url, body, headers)

    def check(self, status: int, body: bytes) -> None:
        http_verdict(status, body)
