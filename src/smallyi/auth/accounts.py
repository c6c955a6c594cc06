"""Who stands behind an actor name, and what that account may do *now*.

Schedules, approvals and SOP runs act in someone's name long after that person clicked:
``schedule:NAME`` acts for the schedule's owner, ``sop:RUN:USER`` for USER. Their rights are never
stored with them: :meth:`Accounts.standing` reads the owner's account at the moment of use, so an
account disabled or removed from the config stops everything acting in its name, and a changed role
or set of groups applies at the next use.

The local CLI (``cli:<login>``) has no account: whoever runs it can read the config and the database,
so what it set up keeps full rights, as the CLI itself has.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select

from smallyi.auth.rbac import Access, RoleBook
from smallyi.errors import ConfigError
from smallyi.storage.db import Database
from smallyi.storage.models import Schedule, User

#: how deep ``schedule:`` / ``sop:`` names are followed (a schedule's run's step's approval is 2)
_MAX_HOPS = 8


@dataclass(frozen=True, slots=True)
class Standing:
    """An account's rights now, or why it has none (``access`` None, ``why`` says why)."""

    person: str
    access: Access | None
    #: "no longer exists (removed from the config)", "is disabled in the config", ...
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.access is not None

    def problem(self, role: str = "user") -> str:
        """``user 'bob' is disabled in the config`` (``role``: "owner", "requester", ...)."""
        return f"{role} {self.person!r} {self.why}"


def is_local(name: str) -> bool:
    """The local CLI's actor name (``cli`` or ``cli:<login>``)."""
    return name == "cli" or name.startswith("cli:")


class Accounts:
    """Resolves actor names to people and people to their current rights, from the users table."""

    def __init__(self, db: Database, roles: RoleBook, *, configured: Collection[str] = (),
                 disabled_in_config: Collection[str] = ()) -> None:
        self.db = db
        self.roles = roles
        #: user names the config lists (to say "no longer in the config" rather than "disabled")
        self.configured = frozenset(configured)
        self.disabled_in_config = frozenset(disabled_in_config)

    async def person_of(self, actor: str) -> str:
        """The user behind ``actor``: a schedule's owner, a SOP run's starter, or ``actor`` itself."""
        for _ in range(_MAX_HOPS):
            if actor.startswith("schedule:"):
                async with self.db.session() as s:
                    owner = await s.scalar(select(Schedule.created_by).where(Schedule.name == actor[9:]))
                if owner is None:
                    return actor  # the schedule is gone: nobody stands behind it (standing says so)
                actor = owner
            elif actor.startswith("sop:") and actor.count(":") >= 2:
                actor = actor.split(":", 2)[2]
            else:
                return actor
        return actor

    async def standing(self, person: str) -> Standing:
        """``person``'s rights now (their role over their groups), or the reason they have none."""
        async with self.db.session() as s:
            user = await s.scalar(select(User).where(User.username == person))
        if user is None:
            if is_local(person):
                return Standing(person, Access.full(person))
            return Standing(person, None, "no longer exists" if person.startswith("schedule:") else "does not exist")
        if user.disabled:
            if person in self.disabled_in_config:
                why = "is disabled in the config"
            elif self.configured and person not in self.configured:
                why = "no longer exists (removed from the config)"
            else:
                why = "is disabled"
            return Standing(person, None, why)
        try:
            return Standing(person, self.roles.access(person, user.role, tuple(user.groups or ())))
        except ConfigError:
            return Standing(person, None, f"has role {user.role!r}, which the config no longer defines")

    async def standing_of(self, actor: str) -> Standing:
        """:meth:`standing` of whoever stands behind ``actor``."""
        return await self.standing(await self.person_of(actor))

    async def active(self) -> frozenset[str]:
        """Names of the accounts that may log in."""
        async with self.db.session() as s:
            return frozenset((await s.scalars(select(User.username).where(User.disabled.is_(False)))).all())
