"""Slack incoming webhook: POST ``https://hooks.slack.com/services/...`` text plus Block Kit blocks.

Payload: ``{"text": fallback, "blocks": [header, section(mrkdwn), context?]}``; Slack answers
``200 ok``, or an error word (``invalid_payload``, ``no_service``) with a 4xx status.
"""

from __future__ import annotations

from typing import Any

from smallyi.notify.base import Channel, Message, NotifyError, Request, http_verdict


class Slack:
    kind = "slack"

    def build(self, channel: Channel, message: Message, *, now: float) -> Request:
        emoji = {"success": ":white_check_mark:", "failure": ":x:"}.get(message.status, ":information_source:")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": message.title[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} {message.text}"[:3000]}},
        ]
        if message.link:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{message.link}|details>"}]})
        payload: dict[str, Any] = {"text": f"{message.title}\n{message.text}"[:3000], "blocks": blocks}
        if channel.options.get("channel"):
            payload["channel"] = str(channel.options["channel"])
        return Request.json(channel.url, payload)

    def check(self, status: int, body: bytes) -> None:
        http_verdict(status, body)
        text = body.decode(errors="replace").strip()
        if text and text != "ok":
            raise NotifyError(f"Slack answered {text[:200]!r}", retry=False, status_code=status)
