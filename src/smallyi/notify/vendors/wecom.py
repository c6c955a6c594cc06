"""WeCom (企业微信) group bot: POST the webhook URL (its ``key=`` is the credential) a markdown or text message.

Payload as WeCom documents it: ``{"msgtype": "markdown", "markdown": {"content": ...}}`` (4096 bytes
at most) or ``{"msgtype": "text", "text": {"content", "mentioned_list", "mentioned_mobile_list"}}``
(2048 bytes); the answer is ``{"errcode": 0, "errmsg": "ok"}``.
"""

from __future__ import annotations

from smallyi.notify.base import Channel, Message, Request, clip_bytes, errcode_verdict

#: errcode 45009: over the bot's rate (20 messages a minute): worth retrying after a pause
_RATE_LIMITED = {45009, 45033}


class WeCom:
    kind = "wecom"

    def build(self, channel: Channel, message: Message, *, now: float) -> Request:
        opts = channel.options
        mentioned = list(opts.get("mentioned_list", []))
        mobiles = list(opts.get("mentioned_mobile_list", []))
        if opts.get("msgtype") == "text" or mentioned or mobiles:
            text = clip_bytes(f"{message.title}\n{message.text}", 2048)
            payload: dict[str, object] = {"msgtype": "text", "text": {
                "content": text, "mentioned_list": mentioned, "mentioned_mobile_list": mobiles}}
        else:
            color = "info" if message.status == "success" else "warning" if message.status == "failure" else "comment"
            content = f"**<font color=\"{color}\">{message.title}</font>**\n{message.text}"
            if message.link:
                content += f"\n[details]({message.link})"
            payload = {"msgtype": "markdown", "markdown": {"content": clip_bytes(content, 4096)}}
        return Request.json(channel.url, payload)

    def check(self, status: int, body: bytes) -> None:
        errcode_verdict("WeCom", status, body, _RATE_LIMITED)
