"""The config's parts that only make sense together (roles, users, policy rules, keys), checked before a
command creates anything on disk.

``config`` checks each value alone; whether a user's role exists, a policy rule names known roles or a key
decodes needs RBAC, the policy and the key ring, which sit above it. Every entry point runs this right
after loading the config, so a mistake leaves no data folder, database or key file behind.
"""

from __future__ import annotations

from smallyi.auth.rbac import RoleBook
from smallyi.config import Settings
from smallyi.errors import ConfigError
from smallyi.policy.rules import CommandPolicy
from smallyi.secrets import keyring


def check(settings: Settings) -> tuple[RoleBook, CommandPolicy]:
    """The role book and the compiled command policy; ConfigError naming the key if any part is wrong."""
    roles = RoleBook.build({name: r.permissions for name, r in settings.roles.items()})
    for u in settings.auth.users:
        try:
            roles.perms(u.role)
        except ConfigError as exc:
            raise ConfigError(f"auth.users (user {u.username!r}).role: {exc.message}") from None
    policy = CommandPolicy(settings.policy.rules, known_roles=roles.roles)
    keyring.check(settings.secrets, settings.audit)
    return roles, policy
