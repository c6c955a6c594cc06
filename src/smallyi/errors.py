"""The one exception tree of small-yi.

Every error a user can meet derives from :class:`SmallYiError` and carries a message that says what
happened and what to do. Lower libraries' errors (asyncssh, SQLAlchemy, YAML) are translated once, at
their adapter, with ``raise ... from exc``. The API maps families to HTTP codes in one place
(``smallyi.api.errors``); the CLI prints the message and exits non-zero.

    SmallYiError
    ├── ConfigError              bad or missing configuration (field / line named)
    │   └── RepoError            the GitOps repository cannot be fetched or read (git's own words)
    ├── StorageError             database unreachable or inconsistent
    ├── InputError               bad user input: API payload, CLI flag, import file (field / line named)
    │   ├── ImportFileError      an inventory file with bad lines (all of them listed)
    │   ├── TooLarge             a request body or message over its size limit
    │   └── TemplateError        a GitOps template or manifest that does not render (template, line, host named)
    ├── NotFound                 a named thing does not exist
    ├── Conflict                 a named thing already exists / state forbids the change
    ├── AuthError                not logged in, bad credentials, expired or revoked token
    │   ├── Forbidden            logged in, but not allowed
    │   │   └── PolicyDenied     the command policy refuses this command
    │   └── Throttled            too many failed logins; retry later
    └── ExecutionError           running something on hosts
        ├── HostUnreachable      connect, auth or host-key failure
        │   ├── HostKeyMismatch  the host's key differs from the trusted one
        │   ├── HostKeyUnknown   no key is trusted for the host yet (`small-yi hostkeys scan`)
        │   └── ConnectTimeout
        └── CommandTimeout
"""

from __future__ import annotations


class SmallYiError(Exception):
    """Root of every error small-yi raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ConfigError(SmallYiError):
    """The configuration file is missing, unreadable or invalid."""

    code = "config_error"


class StorageError(SmallYiError):
    """The database cannot be reached or used."""

    code = "storage_error"


class InputError(SmallYiError):
    """A request, flag or file is malformed; ``field`` names what is wrong."""

    code = "invalid_input"


class TooLarge(InputError):
    """A request body (or message) is larger than the server accepts."""

    code = "too_large"


class ImportFileError(InputError):
    """An inventory import file has bad lines; every one is listed in ``problems``."""

    code = "invalid_import"

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), nothing was imported:\n{lines}")
        self.problems = problems


class NotFound(SmallYiError):
    code = "not_found"


class Conflict(SmallYiError):
    code = "conflict"


class AuthError(SmallYiError):
    code = "unauthorized"


class Forbidden(AuthError):
    code = "forbidden"


class PolicyDenied(Forbidden):
    """The command policy refuses a command; the message names the command, the rule and why."""

    code = "policy_denied"


class Throttled(AuthError):
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExecutionError(SmallYiError):
    code = "execution_error"


class HostUnreachable(ExecutionError):
    code = "unreachable"


class HostKeyMismatch(HostUnreachable):
    code = "host_key_mismatch"


class HostKeyUnknown(HostUnreachable):
    code = "host_key_unknown"


class ConnectTimeout(HostUnreachable):
    code = "connect_timeout"


class CommandTimeout(ExecutionError):
    code = "timeout"


class TemplateError(InputError):
    """GitOps templates that do not render; ``problems`` lists each (template, line and host named)."""

    code = "template_error"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, field="template")
        self.problems = problems or [message]


class RepoError(ConfigError):
    """The GitOps repository cannot be fetched or read: git's message, and which setting to check."""

    code = "repo_error"
