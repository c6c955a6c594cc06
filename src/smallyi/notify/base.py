"""The notifier interface: a message in, an HTTP request out (pure), and a verdict on the answer."""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from smallyi.errors import SmallYiError

KINDS = ("wecom", "dingtalk", "feishu", "slack", "webhook")


@dataclass(frozen=True, slots=True)
class Message:
    """What to say: a title, a body of plain lines (light Markdown), and data for generic webhooks."""

    title: str
    text: str
    #: "success", "failure", "info"
    status: str = "info"
    #: what happened: "sop_run", "task", "schedule", "test"
    event: str = ""
    link: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    kind: str
    url: str = field(repr=False)
    secret: str = field(default="", repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> Request:
        return cls(url, json.dumps(payload, ensure_ascii=False).encode(),
                   {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class NotifyError(SmallYiError):
    """A channel refused or failed a message; ``retry`` says whether trying again may help."""

    code = "notify_failed"

    def __init__(self, message: str, *, retry: bool = True, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status_code = status_code


class Notifier(Protocol):
    """One vendor: ``build`` is pure (``now`` is Unix seconds, for signatures); ``check`` raises NotifyError."""

    kind: str

    def build(self, channel: Channel, message: Message, *, now: float) -> Request: ...

    def check(self, status: int, body: bytes) -> None: ...


def clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (vendors count bytes), marked when cut."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 20].decode(errors="ignore") + "\n... [cut]"


def http_verdict(status: int, body: bytes) -> None:
    """The common part of every check: 2xx passes; 429 and 5xx may pass on retry; other 4xx will not."""
    if 200 <= status < 300:
        return
    snippet = body[:200].decode(errors="replace")
    raise NotifyError(f"HTTP {status}: {snippet}", retry=status == 429 or status >= 500, status_code=status)


def json_answer(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise NotifyError(f"the answer is not JSON: {body[:200].decode(errors='replace')}", retry=False) from None
    return data if isinstance(data, dict) else {}


def errcode_verdict(vendor: str, status: int, body: bytes, rate_limited: Container[int]) -> None:
    """The check of a chat robot that answers ``{"errcode": 0, "errmsg": "ok"}`` (WeCom, DingTalk): the HTTP
    verdict, then a non-zero errcode refuses; those in ``rate_limited`` may pass on retry."""
    http_verdict(status, body)
    answer = json_answer(body)
    code = answer.get("errcode", 0)
    if code != 0:
        raise NotifyError(f"{vendor} answered errcode {code}: {answer.get('errmsg', '')}",
                          retry=code in rate_limited, status_code=status)
