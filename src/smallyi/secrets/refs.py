"""``secret:NAME`` in the config: webhook, bot and ticket credentials kept in the secret store instead.

A config file is read by backups, editors and reviewers; a chat robot's URL with its access token, a
signing secret or a ticket system's ``Authorization`` header written there in plain text is one leaked
file away. Each of the fields in ``FIELDS`` may instead be ``secret:NAME``: the value is then the
stored secret ``NAME`` (``small-yi secrets set NAME``), encrypted at rest, decrypted when the process
starts, and redacted from logs from then on. A reference to a secret that is not stored stops the start
with the field and the command that stores it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from smallyi.config import Settings
from smallyi.errors import ConfigError, NotFound

PREFIX = "secret:"


async def resolve(s: Settings, get: Callable[[str], Awaitable[str]]) -> Settings:
    """``s`` with every reference replaced by its secret's value (``get``: the secret store's).

    The fields: ``gitops.webhook_secret``; ``notify.channels.*.url`` and ``.secret``; ``tickets.url``
    and ``tickets.headers.*``; ``tickets.templates.*.url`` and ``.headers.*``.
    """
    async def value(field: str, given: str) -> str:
        if not given.startswith(PREFIX):
            return given
        name = given[len(PREFIX):].strip()
        if not name:
            raise ConfigError(f"{field}: {PREFIX} needs the name of a stored secret, e.g. {PREFIX}ops-bot")
        try:
            return await get(name)
        except NotFound:
            raise ConfigError(f"{field}: no stored secret {name!r}; store it with "
                              f"`small-yi secrets set {name}` (it reads the value from stdin)") from None

    async def headers(field: str, given: dict[str, str]) -> dict[str, str]:
        return {k: await value(f"{field}.{k}", v) for k, v in given.items()}

    gitops = s.gitops.model_copy(update={"webhook_secret": await value("gitops.webhook_secret",
                                                                       s.gitops.webhook_secret)})
    channels = {name: ch.model_copy(update={"url": await value(f"notify.channels.{name}.url", ch.url),
                                            "secret": await value(f"notify.channels.{name}.secret", ch.secret)})
                for name, ch in s.notify.channels.items()}
    templates = {name: t.model_copy(update={"url": await value(f"tickets.templates.{name}.url", t.url),
                                            "headers": await headers(f"tickets.templates.{name}.headers", t.headers)})
                 for name, t in s.tickets.templates.items()}
    tickets = s.tickets.model_copy(update={"url": await value("tickets.url", s.tickets.url),
                                           "headers": await headers("tickets.headers", s.tickets.headers),
                                           "templates": templates})
    return s.model_copy(update={"gitops": gitops, "notify": s.notify.model_copy(update={"channels": channels}),
                                "tickets": tickets})
