"""Sending: one delivery row per (channel, event), retried with backoff, never raising into the caller.

``notify`` returns at once (sending goes on in the background); ``drain`` waits for what is in
flight (the CLI calls it before exiting). A delivery's key (``sop_run:5:finish``) is unique per
channel, so when several processes see the same event only one sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from smallyi.config import NotifySettings
from smallyi.errors import NotFound
from smallyi.notify.base import Message, NotifyError
from smallyi.notify.channels import ChannelStore
from smallyi.notify.vendors import NOTIFIERS
from smallyi.secrets.redact import Redactor
from smallyi.storage.db import Database
from smallyi.storage.models import NotifyDelivery, utcnow
from smallyi.timestamps import iso

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


def delivery_dict(d: NotifyDelivery) -> dict[str, Any]:
    return {"id": d.id, "channel": d.channel, "event": d.event, "event_key": d.event_key, "subject": d.subject,
            "title": d.title, "status": d.status, "attempts": d.attempts, "last_error": d.last_error or None,
            "status_code": d.status_code, "created_at": iso(d.created_at), "sent_at": iso(d.sent_at)}


class NotifyService:
    def __init__(self, db: Database, settings: NotifySettings, channels: ChannelStore, *,
                 redactor: Redactor | None = None, clock: Callable[[], float] = time.time,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.db = db
        self.settings = settings
        self.channels = channels
        self.redactor = redactor
        self.clock = clock
        self._client = httpx.AsyncClient(transport=transport, timeout=settings.timeout, follow_redirects=False)
        self._inflight: set[asyncio.Task[None]] = set()

    def reconfigure(self, settings: NotifySettings) -> None:
        """A reloaded config's channels, retries and timeout, for the deliveries that start from now on."""
        self.settings = settings
        self.channels.configure(settings.channels)
        self._client.timeout = httpx.Timeout(settings.timeout)

    async def notify(self, channels: Iterable[str], message: Message, *, key: str, subject: str = "") -> list[int]:
        """Queue ``message`` to each channel (once per ``key``); returns the new delivery ids. Never raises."""
        ids: list[int] = []
        for name in dict.fromkeys(channels):
            try:
                delivery_id = await self._record(name, message, key=key, subject=subject)
            except Exception:
                log.exception("notify: recording a delivery to %s failed", name)
                continue
            if delivery_id is None:
                continue  # another process sends this one
            ids.append(delivery_id)
            task = asyncio.create_task(self._deliver(delivery_id, name, message), name=f"notify-{delivery_id}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        return ids

    async def send_now(self, channel: str, message: Message, *, key: str, subject: str = "") -> dict[str, Any]:
        """Send and wait (the channel test): the delivery as recorded."""
        delivery_id = await self._record(channel, message, key=key, subject=subject)
        assert delivery_id is not None
        await self._deliver(delivery_id, channel, message)
        return await self.delivery(delivery_id)

    async def _record(self, channel: str, message: Message, *, key: str, subject: str) -> int | None:
        row = NotifyDelivery(channel=channel, event_key=key[:255], event=message.event, subject=subject[:255],
                             title=message.title, status="pending", created_at=utcnow())
        try:
            async with self.db.session.begin() as s:
                s.add(row)
        except IntegrityError:
            return None
        return row.id

    async def _deliver(self, delivery_id: int, name: str, message: Message) -> None:
        try:
            await self._attempts(delivery_id, name, message)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self._set(delivery_id, status="failed", last_error="interrupted: small-yi stopped")
            raise
        except Exception as exc:  # a bug here must not escape into whoever notified
            log.exception("notify: delivery %s to %s failed inside small-yi", delivery_id, name)
            with contextlib.suppress(Exception):
                await self._set(delivery_id, status="failed", last_error=f"internal error: {exc!r}")

    async def _attempts(self, delivery_id: int, name: str, message: Message) -> None:
        try:
            channel = await self.channels.get(name)
        except NotFound as exc:
            await self._set(delivery_id, status="failed", last_error=exc.message)
            log.warning("notify: %s", exc.message)
            return
        notifier = NOTIFIERS[channel.kind]
        error: NotifyError | None = None
        tries = 1 + self.settings.retries
        for attempt in range(1, tries + 1):
            code: int | None = None
            try:
                req = notifier.build(channel, message, now=self.clock())
                resp = await self._client.post(req.url, content=req.body, headers=dict(req.headers))
                code = resp.status_code
                notifier.check(resp.status_code, resp.content)
                await self._set(delivery_id, status="sent", attempts=attempt, status_code=code, sent_at=utcnow(),
                                last_error="")
                return
            except NotifyError as exc:
                error = exc
            except httpx.HTTPError as exc:
                error = NotifyError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, retry=True)
            text = self._clean(error.message)
            await self._set(delivery_id, attempts=attempt, last_error=text, status_code=error.status_code or code)
            if not error.retry or attempt == tries:
                break
            await asyncio.sleep(min(self.settings.backoff * 2 ** (attempt - 1), MAX_BACKOFF))
        assert error is not None
        await self._set(delivery_id, status="failed")
        log.warning("notify: %s to channel %s failed after %d attempt(s): %s", message.event or "message", name,
                    attempt, self._clean(error.message))

    def _clean(self, text: str) -> str:
        return self.redactor.redact(text) if self.redactor is not None else text

    async def _set(self, delivery_id: int, **values: Any) -> None:
        async with self.db.session.begin() as s:
            await s.execute(update(NotifyDelivery).where(NotifyDelivery.id == delivery_id).values(**values))

    async def delivery(self, delivery_id: int) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await s.get(NotifyDelivery, delivery_id)
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return delivery_dict(row)

    async def deliveries(self, *, status: str | None = None, channel: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[dict[str, Any]]:
        q = select(NotifyDelivery).order_by(NotifyDelivery.id.desc()).limit(limit).offset(offset)
        if status:
            q = q.where(NotifyDelivery.status == status)
        if channel:
            q = q.where(NotifyDelivery.channel == channel)
        async with self.db.session() as s:
            return [delivery_dict(r) for r in (await s.scalars(q)).all()]

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout``) for deliveries in flight."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)

    async def close(self) -> None:
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        await self._client.aclose()
