"""What the ``/notifications`` routes answer: channels (never their URL's path or secret) and deliveries."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from smallyi.api.schemas import Answer


class ChannelOut(Answer):
    """A channel as shown: its URL cut to the host (a bot URL's path and query hold its key)."""

    name: str
    kind: Literal["wecom", "dingtalk", "feishu", "slack", "webhook"]
    url: str = Field(description="scheme and host only: https://qyapi.weixin.qq.com/...")
    has_secret: bool = Field(description="whether a signing secret is set (never shown)")
    options: dict[str, Any] = Field(description="the vendor's options, e.g. {\"at_all\": true}")
    source: Literal["config", "api"] = Field(description="config: read-only here, change it in notify.channels")
    enabled: bool
    description: str
    created_by: str | None = Field(description="none for config channels")
    created_at: str | None = Field(description="none for config channels")


class DeliveryOut(Answer):
    """One message to one channel, as sent or tried."""

    id: int
    channel: str
    event: str = Field(description="what it tells of (task, sop_run, test ...); empty for none")
    event_key: str = Field(description="unique per channel: the same event is sent once")
    subject: str
    title: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None = Field(description="the vendor's or the network's words on the last failed attempt")
    status_code: int | None = Field(description="the vendor's last HTTP status")
    created_at: str
    sent_at: str | None
