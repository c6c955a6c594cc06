"""Notification channels (WeCom, DingTalk, Feishu, Slack, webhook) and the record of every delivery.

A channel's URL and secret are write-only: answers show the URL's host and whether a secret is set.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import Paging, State, User, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.notifications import ChannelOut, DeliveryOut
from smallyi.notify import templates
from smallyi.sop import automation
from smallyi.storage.models import utcnow

router = APIRouter(prefix="/notifications", tags=["notifications"])

Kind = Literal["wecom", "dingtalk", "feishu", "slack", "webhook"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    url: str = Field(min_length=1, max_length=2048)
    secret: str = Field(default="", max_length=1024)
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = Field(default="", max_length=2000)
    enabled: bool = True


class NewChannelIn(ChannelIn):
    name: str = Field(min_length=1, max_length=128)


@router.get("/channels", response_model=Page[ChannelOut], dependencies=[needs(Perm.NOTIFY_READ)])
async def list_channels(state: State, user: User) -> dict[str, Any]:
    items = await automation.of(state).notify.channels.list()
    return listing(items, len(items))


@router.post("/channels", status_code=201, response_model=ChannelOut, dependencies=[needs(Perm.NOTIFY_WRITE)])
async def create_channel(body: NewChannelIn, state: State, user: User) -> dict[str, Any]:
    """Add a channel (its URL and secret are stored encrypted and never shown again)."""
    return await automation.of(state).notify.channels.put(
        body.name, kind=body.kind, url=body.url, secret=body.secret, options=body.options,
        description=body.description, enabled=body.enabled, by=user.username, create=True)


@router.get("/channels/{name}", response_model=ChannelOut, dependencies=[needs(Perm.NOTIFY_READ)])
async def get_channel(name: str, state: State, user: User) -> dict[str, Any]:
    return await automation.of(state).notify.channels.describe(name)


@router.put("/channels/{name}", response_model=ChannelOut, dependencies=[needs(Perm.NOTIFY_WRITE)])
async def put_channel(name: str, body: ChannelIn, state: State, user: User) -> dict[str, Any]:
    return await automation.of(state).notify.channels.put(
        name, kind=body.kind, url=body.url, secret=body.secret, options=body.options,
        description=body.description, enabled=body.enabled, by=user.username)


@router.delete("/channels/{name}", status_code=204, dependencies=[needs(Perm.NOTIFY_WRITE)])
async def delete_channel(name: str, state: State, user: User) -> Response:
    await automation.of(state).notify.channels.delete(name)
    return Response(status_code=204)


@router.post("/channels/{name}/test", response_model=DeliveryOut, dependencies=[needs(Perm.NOTIFY_WRITE)])
async def test_channel(name: str, state: State, user: User) -> dict[str, Any]:
    """Send a test message now and answer with the delivery (sent, or failed with the vendor's words)."""
    auto = automation.of(state)
    await auto.notify.channels.describe(name)
    msg = templates.message("test", {"channel": name, "user": user.username}, configured=state.settings.notify.templates)
    return await auto.notify.send_now(name, msg, key=f"test:{name}:{utcnow().timestamp()}", subject=f"test by {user.username}")


@router.get("/deliveries", response_model=Page[DeliveryOut], dependencies=[needs(Perm.NOTIFY_READ)])
async def list_deliveries(state: State, user: User, page: Paging,
                          status: Literal["pending", "sent", "failed"] | None = None,
                          channel: str | None = None) -> dict[str, Any]:
    """Every message sent or tried, newest first: failures keep the last error and the attempts made."""
    items = await automation.of(state).notify.deliveries(status=status, channel=channel, limit=page.limit,
                                                          offset=page.offset)
    return listing(items, len(items))
