"""``small-yi run --notify CHANNEL[,CHANNEL] --notify-on failure|success|finish``: a task's own notification.

Loaded only when ``--notify`` is given. The channels are checked before the task is submitted (an
unknown one is exit status 2 and nothing runs); in-process, the CLI sends the message itself when
the task ends and waits for the delivery (a server that also watches the archive does not send it
twice: the delivery key is unique per channel). With ``--server`` the server checks and sends.
"""

from __future__ import annotations

from typing import Any

from smallyi.cli.common import fail
from smallyi.errors import SmallYiError


def spec(channels: str | None, on: str | None) -> dict[str, Any] | None:
    """The ``notify`` value for the task (None without ``--notify``); bad values end the command (exit 2)."""
    from smallyi.notify.when import task_notify  # light: --server loads no database layer

    if not channels:
        if on:
            fail("--notify-on needs --notify CHANNEL")
        return None
    try:
        return task_notify(channels.split(","), (on or "failure").split(","))
    except SmallYiError as exc:
        fail(exc.message.replace("notify on:", "--notify-on:").replace("notify:", "--notify:"))


class Sender:
    """The runtime's notification service, for one in-process task."""

    def __init__(self, rt: Any) -> None:
        from smallyi.notify.channels import ChannelStore
        from smallyi.notify.service import NotifyService
        from smallyi.secrets import redact

        s = rt.settings
        self.rt = rt
        self.service = NotifyService(rt.db, s.notify, ChannelStore(rt.db, s.notify.channels, rt.secrets.box,
                                                                   redact.shared()), redactor=redact.shared())

    async def check(self, notify: dict[str, Any]) -> None:
        from smallyi.errors import InputError
        from smallyi.notify.tasks import check_channels

        try:
            await check_channels(self.service.channels, notify["channels"])
        except InputError as exc:
            raise InputError("--" + exc.message, field=exc.field) from None

    async def send(self, task_id: int, notify: dict[str, Any]) -> None:
        """Queue the message the task asks for, and wait for its deliveries (retries included)."""
        from smallyi.auth.rbac import EVERY_HOST
        from smallyi.notify.tasks import notify_task

        task = await self.rt.archive.task(task_id, scope=EVERY_HOST)
        await notify_task(self.service, task, notify, configured=self.rt.settings.notify.templates)
        await self.service.drain(timeout=60.0)

    async def close(self) -> None:
        await self.service.close()
