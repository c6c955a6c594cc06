"""YAML configuration → typed settings, read once and passed down explicitly.

The smallest valid file is the original's (``database`` + ``auth.users``); everything else has a
default. Durations are Go-style. Relative paths resolve against the config file's folder, ``~`` against
the home of the user running small-yi. Unknown keys are errors that name the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from smallyi.durations import NO_ZERO_TIMEOUT, parse_duration, parse_size
from smallyi.errors import ConfigError, InputError

DEFAULT_CONFIG = "config.yaml"
_BCRYPT = re.compile(r"^\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}$")
#: a stored secret's name (as ``smallyi.secrets.store`` takes it)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
T = TypeVar("T")


def _reported(parse: Callable[[Any], T], what: str) -> BeforeValidator:
    """``parse`` as a field validator: its InputError becomes a ValueError, which pydantic reports with the
    field's location (in place of the ``what:`` it starts with)."""

    def validate(value: object) -> T:
        try:
            return parse(value)
        except InputError as exc:
            raise ValueError(exc.message.removeprefix(f"{what}: ")) from None

    return BeforeValidator(validate)


def _floor(least: float, message: str, *, above: bool = False) -> AfterValidator:
    """A field's lower bound (``above``: the bound itself is refused too) and what to say below it;
    ``{v}`` in ``message`` is the value given."""

    def check(v: float) -> float:
        if v < least or (above and v == least):
            raise ValueError(message.format(v=v))
        return v

    return AfterValidator(check)


Duration = Annotated[float, _reported(parse_duration, "duration")]
#: a command or connect timeout: a Duration more than zero (a 0 that meant "no limit" is refused)
Timeout = Annotated[Duration, _floor(0, NO_ZERO_TIMEOUT, above=True)]
#: a Duration more than zero, refused with the plain "must be more than 0s"
PositiveDuration = Annotated[Duration, _floor(0, "must be more than 0s", above=True)]
#: bytes, or a number with a unit: ``512KiB``, ``32MiB``, ``1GiB`` (``KB``, ``MB``, ``GB``: powers of 1000)
Size = Annotated[int, _reported(parse_size, "size")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_ROOM_FOR_A_REQUEST = _floor(4096, "{v} bytes is too small for an API request; give at least 4KiB, e.g. 4MiB")


class ServerSettings(_Section):
    listen: str = ":8080"
    #: path prefix when served behind a reverse proxy (e.g. ``/small-yi``)
    base_path: str = ""
    #: the login cookie's Secure flag: "auto" (when the request came over HTTPS), "always" or "never"
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: ``serve`` writes its process id here, where ``small-yi reload`` finds the server to reload
    pid_file: str = "./data/small-yi.pid"
    #: the largest request body, counted while it streams in (413 past it); the host import and the GitOps
    #: webhook allow their own, larger sizes (16MiB, 10MiB)
    max_body: Annotated[Size, _ROOM_FOR_A_REQUEST] = 4 * 1024 * 1024
    #: the largest message a WebSocket client may send (terminal input, resizes); a larger one closes it (1009)
    max_ws_message: Annotated[Size, _ROOM_FOR_A_REQUEST] = 1024 * 1024
    #: the addresses whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are believed (a reverse proxy on this
    #: machine); the client address of a request from elsewhere is its own (``[]``: believe nobody, ``["*"]``: all)
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        split_listen(v)
        return v

    def host_port(self) -> tuple[str, int]:
        """``":8080"`` → ("0.0.0.0", 8080); ``"127.0.0.1:9000"`` → ("127.0.0.1", 9000)."""
        return parse_listen(self.listen)


LISTEN_FORMS = '":8080", "127.0.0.1:8080", "localhost:8080" or "[::1]:8080"'
_PORT = re.compile(r"[0-9]+")
_HOST_NAME = re.compile(r"(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def parse_listen(listen: str, *, field: str = "server.listen") -> tuple[str, int]:
    """A listen address as (host, port); ConfigError naming ``field`` (``server.listen``, ``--listen``)."""
    try:
        return split_listen(listen)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def split_listen(listen: str) -> tuple[str, int]:
    """``":8080"`` → ("0.0.0.0", 8080); ``"[::1]:81"`` → ("::1", 81). ValueError saying what is wrong.

    The port is 0-65535 (0: any free one); the host an IPv4 address, an IPv6 address in brackets or a
    host name. Checked when the config loads, so a bad address is a config error, not a traceback at bind.
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not _PORT.fullmatch(port):
        raise ValueError(f"{listen!r} is not HOST:PORT or :PORT (e.g. {LISTEN_FORMS})")
    if int(port) > 65535:
        raise ValueError(f"{listen!r}: port {int(port)} is not 0-65535 (0 picks a free port)")
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1])), int(port)
        except ValueError:
            raise ValueError(f"{listen!r}: {host[1:-1]!r} is not an IPv6 address") from None
    if ":" in host and _is_ipv6(host):
        raise ValueError(f"{listen!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    if not host:
        return "0.0.0.0", int(port)
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{listen!r}: {host!r} is not an IPv4 address") from None
    elif not _HOST_NAME.fullmatch(host):
        raise ValueError(f"{listen!r}: {host!r} is not an IP address or a host name (e.g. {LISTEN_FORMS})")
    return host, int(port)


class DatabaseSettings(_Section):
    driver: Literal["sqlite3", "postgres"] = "sqlite3"
    source: str = "./data/small-yi.db"


class BusSettings(_Section):
    """The event bus live output travels on (docs/config.md, "The event bus")."""

    #: memory: in this process only; redis: through Redis Streams, across processes
    driver: Literal["memory", "redis"] = "memory"
    #: the Redis server (driver redis): redis://[:password@]host:port/db, rediss:// (TLS) or unix:///path
    url: str = "redis://127.0.0.1:6379/0"
    #: events Redis keeps per topic (a window: the archive keeps everything); viewers further behind catch up
    #: from the archive
    stream_maxlen: int = Field(20_000, ge=100)
    #: put before every key small-yi writes, so that several installations can share one Redis
    prefix: str = Field("small-yi:", max_length=100)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_redis_url(v)


def check_redis_url(url: str) -> str:
    """``url`` if it is a Redis URL redis-py takes; ValueError saying what is wrong (shown without password)."""
    shown = redact_url(url)
    parts = urlsplit(url)
    example = "e.g. redis://127.0.0.1:6379/0, rediss://:PASSWORD@redis.example:6380/0 or unix:///run/redis.sock"
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{shown!r} is not a Redis URL ({example})")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"{shown!r} names no socket file ({example})")
        return url
    try:
        _ = parts.port  # urlsplit checks it when asked
    except ValueError:
        raise ValueError(f"{shown!r}: the port is not a number 0-65535 ({example})") from None
    if not parts.hostname:
        raise ValueError(f"{shown!r} names no host ({example})")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"{shown!r}: the database after the / is a number (0-15 on a default Redis), not {db!r}")
    return url


class UserSettings(_Section):
    username: str = Field(min_length=1)
    password_hash: str
    #: admin | operator | viewer | auditor | a custom role (``roles:``); omitted means admin, as in the original
    role: str = "admin"
    #: the groups the role is granted over; empty means every group
    groups: list[str] = Field(default_factory=list)
    #: true: the account stays in the file but cannot act (as if removed): logins, tokens, schedules
    disabled: bool = False
    #: a changed ``password_hash`` revokes the user's sessions and API tokens; true keeps the API tokens
    keep_tokens_on_password_change: bool = False

    @property
    def role_omitted(self) -> bool:
        """The file gave no role (so the user is admin, and the start-up log says so)."""
        return "role" not in self.model_fields_set

    @field_validator("username")
    @classmethod
    def _no_colon(cls, v: str) -> str:
        if ":" in v:  # an account must not pass for schedule:NAME, sop:RUN:USER or cli:LOGIN in records
            raise ValueError(f"{v!r}: a user name may not contain ':' (schedule:, sop: and cli: name "
                             "what acts on someone's behalf)")
        return v

    @field_validator("password_hash")
    @classmethod
    def _bcrypt_only(cls, v: str) -> str:
        if not _BCRYPT.match(v):
            raise ValueError(
                "is not a bcrypt hash ($2a$/$2b$/$2y$, 60 characters); make one with `small-yi hashpwd`"
            )
        return v


class AuthSettings(_Section):
    users: list[UserSettings] = Field(default_factory=list)
    session_ttl: Duration = 12 * 3600.0
    #: failed logins allowed per (user, client address) within ``login_window`` before 429
    login_max_failures: int = Field(default=5, ge=1)
    #: failed logins allowed per client address (whatever the user names; IPv6 by /64) within ``login_window``
    address_max_failures: int = Field(default=20, ge=1)
    login_window: Duration = 300.0
    #: how often an open WebSocket (terminal, live output) checks that its login still holds; a logout,
    #: a revoked token, an expired session or a disabled user closes it within this time
    session_recheck: PositiveDuration = 5.0

    @field_validator("users")
    @classmethod
    def _unique(cls, v: list[UserSettings]) -> list[UserSettings]:
        seen: set[str] = set()
        for u in v:
            if u.username in seen:
                raise ValueError(f"user {u.username!r} is listed twice")
            seen.add(u.username)
        return v


class SSHSettings(_Section):
    user: str = "root"
    #: the client key file; unset (with no ``private_key_secret``), hosts are logged in to the way ``ssh``
    #: does it: keys of the ssh-agent (``agent``), IdentityFile of ``config_file``, ~/.ssh/id_*
    private_key: str | None = None
    #: the name of a stored secret (``small-yi secrets set NAME --kind ssh-key``) holding the private key,
    #: encrypted at rest; used instead of ``private_key`` when set
    private_key_secret: str | None = None
    known_hosts: str | None = "~/.ssh/known_hosts"
    #: with no key configured: offer the keys of the ssh-agent at $SSH_AUTH_SOCK
    agent: bool = True
    #: with no key configured: the OpenSSH client config whose Host blocks apply (IdentityFile, HostName,
    #: ProxyJump...), as ``ssh`` reads it; null to read none
    config_file: str | None = "~/.ssh/config"
    host_key_policy: Literal["strict", "accept-new", "off"] = "strict"
    connect_timeout: Timeout = 10.0
    keepalive_interval: Duration = 30.0
    #: pooled connections idle longer than this are closed
    pool_idle_timeout: Duration = 300.0
    #: at most this many pooled connections; the least recently used idle one is closed past it
    pool_max_size: int = Field(default=2000, ge=1)


class ExecutionSettings(_Section):
    #: global cap on host sessions running at once, over all tasks
    max_concurrency: int = Field(default=500, ge=1)
    #: per-task concurrency when a task does not say
    default_concurrency: int = Field(default=200, ge=1)
    #: more than 0: there is no unlimited timeout
    default_timeout: Timeout = 60.0
    #: grace after a timeout or cancel for the remote side to stop before the host is closed
    kill_grace: Duration = 2.0


class OutputSettings(_Section):
    #: bytes kept from the start and from the end of each host's stdout and stderr
    head_bytes: int = Field(default=64 * 1024, ge=0)
    tail_bytes: int = Field(default=64 * 1024, ge=0)
    #: longest archived line; longer lines are cut and marked
    max_line_bytes: int = Field(default=16 * 1024, ge=80)
    #: output reaches the database at most this long after it was produced
    flush_interval: Duration = 0.5
    #: if set, every host's full output is also kept gzip-compressed under this folder
    full_log_dir: str | None = None


class RoleSettings(_Section):
    """A custom role: permission names (``tasks.read``) or wildcards (``tasks.*``)."""

    permissions: list[str] = Field(min_length=1)
    description: str = ""


class AuditSettings(_Section):
    #: audit records older than this many days are purged (compliance asks for at least 180)
    retention_days: int = Field(default=180, ge=1)
    #: how often the server purges expired records
    purge_interval: Duration = 24 * 3600.0
    #: the permission-matrix report flags more admins than this
    max_admins: int = Field(default=2, ge=0)
    #: ... and grants not used for this many days
    unused_days: int = Field(default=30, ge=1)
    #: the key records are MAC'd with (base64 of 32 bytes); prefer the environment variable or the key file
    mac_key: str | None = Field(default=None, repr=False)
    #: environment variable read for the audit key when ``mac_key`` is not set
    mac_key_env: str = "SMALLYI_AUDIT_KEY"
    #: the audit key file (created with mode 0600 on first start); empty: ``audit.key`` beside the master key file
    key_file: str = ""
    #: the external anchor: the newest record's id, hash and MAC, written after each record, outside the
    #: database (docs/security.md); empty: ``audit.anchor`` beside the audit key file
    anchor_file: str = ""
    #: the server also sends the anchor, when it has moved, this often to ...
    anchor_interval: Annotated[Duration, _floor(1, "must be at least 1s, e.g. 1h")] = 3600.0
    #: ... syslog: a socket path (``/dev/log``) or ``HOST:PORT`` (UDP); empty: not sent
    anchor_syslog: str = ""
    #: ... and/or a webhook: the anchor is POSTed to this URL as JSON; empty: not sent
    anchor_webhook: str = Field(default="", repr=False)

    @field_validator("anchor_webhook")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v


class PolicyRule(_Section):
    """Command patterns with one action, for some roles (default: all) on some groups (default: all)."""

    name: str = ""
    deny: list[str] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    #: commands matching these wait for a second person's approval
    approve: list[str] = Field(default_factory=list)
    #: opaque commands (scripts, interpreters) allowed to run although the policy cannot see inside them
    trust: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    #: shown to the user when this rule refuses a command
    reason: str = ""


class PolicySettings(_Section):
    rules: list[PolicyRule] = Field(default_factory=list)
    #: a pending approval expires after this long
    approval_ttl: Duration = 3600.0


class SecretsSettings(_Section):
    #: the master key (base64 of 32 bytes); prefer the environment variable or the key file
    master_key: str | None = Field(default=None, repr=False)
    #: environment variable read for the master key when ``master_key`` is not set
    master_key_env: str = "SMALLYI_MASTER_KEY"
    #: the key file used (and created with mode 0600 on first start) when no key is given
    key_file: str = "./data/master.key"


class _NotifyRule(_Section):
    """Which channels to tell when something ends, on which outcomes."""

    channels: list[str] = Field(default_factory=list)
    #: success | failure | finish (either)
    on: tuple[Literal["success", "failure", "finish"], ...] = ("failure",)

    @model_validator(mode="before")
    @classmethod
    def _bare_on(cls, data: Any) -> Any:
        """YAML 1.1 reads a bare ``on:`` key as the boolean true; it means ``on`` here."""
        if isinstance(data, dict) and True in data:
            return {("on" if k is True else k): v for k, v in data.items()}
        return data


class GitOpsNotifyRule(_NotifyRule):
    """Notify when GitOps syncs, rollbacks or drift checks end (``gitops.notify``); a drift check that finds
    drift is a failure."""

    #: which records: sync, rollback, drift
    kinds: tuple[Literal["sync", "rollback", "drift"], ...] = ("sync", "rollback", "drift")


class GitOpsSettings(_Section):
    """Config files kept in Git and pushed to hosts on every commit (docs/gitops.md)."""

    #: the repository: https://, ssh:// (or user@host:path), a local path or file:// URL; empty turns GitOps off
    repo: str = ""
    branch: str = "main"
    #: the HMAC secret (GitHub, Gitea) or token (GitLab) a push webhook must carry; empty refuses every webhook
    webhook_secret: str = Field(default="", repr=False)
    #: > 0: also fetch the branch this often and sync a new head (for repositories that cannot send webhooks)
    poll_interval: Duration = 0.0
    #: how often the server checks that synced files still match what was written (0: never)
    drift_interval: Duration = 3600.0
    #: where the server keeps its clone of the repository (relative to the config file)
    workdir: str = "./data/gitops"
    #: limit on writing files and running check/reload commands, per host (more than 0)
    timeout: Timeout = 60.0
    #: hosts synced at once (0: ``execution.default_concurrency``)
    concurrency: int = Field(default=0, ge=0)
    #: chat / webhook notifications when a sync, rollback or drift check ends (server only)
    notify: GitOpsNotifyRule = GitOpsNotifyRule()
    #: how long rendering one commit (every template for every host) may take before it is stopped
    render_timeout: PositiveDuration = 30.0
    #: memory (address space) of the process that renders; past it the render is stopped
    render_memory: Annotated[Size, _floor(128 * 1024 * 1024, "must be at least 128MiB (the rendering process "
                                          "itself needs some)")] = 1024 * 1024 * 1024
    #: the largest file (or path) one template may render; it is stopped as it grows past it
    render_max_output: Annotated[Size, _floor(1024, "must be at least 1KiB")] = 4 * 1024 * 1024
    #: stored secrets a repository's hosts may name as ``ssh.private_key_secret`` (none: no host its own key)
    ssh_key_secrets: list[str] = Field(default_factory=list)

    @field_validator("ssh_key_secrets")
    @classmethod
    def _secret_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _SECRET_NAME.match(name):
                raise ValueError(f"{name!r} is not a secret name (letters, digits, '.', '_' and '-')")
        return v


class ChannelSettings(_Section):
    """A notification channel defined in the config (channels can also be added through the API)."""

    #: wecom | dingtalk | feishu | slack | webhook
    kind: Literal["wecom", "dingtalk", "feishu", "slack", "webhook"]
    url: str = Field(min_length=1, repr=False)
    #: DingTalk / Feishu signing secret, or the HMAC key of a generic webhook
    secret: str = Field(default="", repr=False)
    #: vendor options, e.g. ``{"mentioned_list": ["@all"]}`` (WeCom), ``{"at_all": true}`` (DingTalk)
    options: dict[str, Any] = Field(default_factory=dict)


class NotifyTaskRule(_NotifyRule):
    """Notify on ad-hoc tasks that finish (``notify.tasks``)."""

    #: only tasks created by these users (empty: everyone)
    created_by: list[str] = Field(default_factory=list)


#: the events notification templates exist for (``notify.templates`` keys)
NOTIFY_EVENTS = ("sop_run", "task", "schedule", "gitops_sync", "test")


class NotifySettings(_Section):
    """Chat and webhook notifications of tasks, SOP runs and schedules (docs/notifications.md)."""

    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    #: attempts after the first failure, with exponential backoff from ``backoff``
    retries: int = Field(default=3, ge=0, le=10)
    backoff: Duration = 1.0
    timeout: Duration = 10.0
    #: message templates (Jinja2, sandboxed) by event: sop_run, task, schedule, gitops_sync, test
    templates: dict[str, str] = Field(default_factory=dict)
    tasks: NotifyTaskRule = NotifyTaskRule()

    @field_validator("templates")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        """An unknown event or a template that does not parse is a config error, not a silent fallback."""
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment()
        for event, text in v.items():
            if event not in NOTIFY_EVENTS:
                raise ValueError(f"no notification event {event!r} (events: {', '.join(NOTIFY_EVENTS)})")
            try:
                env.parse(text)
            except TemplateSyntaxError as exc:
                raise ValueError(f"the {event} template is not valid Jinja2: {exc.message} "
                                 f"(template line {exc.lineno})") from None
        return v


class TicketTemplateSettings(_Section):
    """One ticket template: the JSON body (strings are Jinja2 templates), SLA level, optional overrides."""

    sla: str = ""
    title: str = ""
    body: dict[str, Any] = Field(default_factory=dict)
    url: str = ""
    headers: dict[str, str] = Field(default_factory=dict)


class TicketSettings(_Section):
    """The ticket system SOP steps open tickets in, through a templated webhook (docs/sop.md)."""

    url: str = ""
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    timeout: Duration = 10.0
    #: where the answer's JSON holds the ticket id and URL (dotted paths)
    id_field: str = "id"
    url_field: str = "url"
    #: builds the URL when the answer has none (Jinja2, with ``id``)
    url_template: str = ""
    templates: dict[str, TicketTemplateSettings] = Field(default_factory=dict)


class SopSettings(_Section):
    """Declarative procedures (docs/sop.md)."""

    #: variables injected by ``--inject-env NAME``, by environment name
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: how long an approval step waits for a decision
    approval_timeout: Duration = 24 * 3600.0
    #: steps of one run at once
    max_parallel: int = Field(default=16, ge=1, le=1000)
    #: how deep ``type: sop`` steps may call other SOPs
    max_depth: int = Field(default=5, ge=1, le=20)
    #: a run whose process stopped renewing it for this long is taken over (waits) or interrupted
    lease: Duration = 30.0


class TerminalSettings(_Section):
    """The web terminal (docs/console.md)."""

    #: a session nobody types into for this long is closed (a client may ask for less, never more)
    idle_timeout: Annotated[Duration, _floor(0, "must be more than 0, e.g. 15m", above=True)] = 15 * 60.0
    #: the most a session's recording keeps; past it the session goes on, unrecorded, and says so
    max_recording: Annotated[Size, _floor(4096, "{v} bytes is too small for a recording; give at least 4KiB, "
                                          "e.g. 32MiB")] = 32 * 1024 * 1024
    #: whether the built-in ``local`` host has a terminal: a shell on the server as the server's user
    #: (docs/security.md); it also needs terminal.open on group ``local``
    local: bool = True


class ScheduleSettings(_Section):
    """Cron schedules of commands and SOPs (docs/schedules.md)."""

    enabled: bool = True
    #: the default time zone of new schedules
    timezone: str = "UTC"
    #: a slot noticed later than this is "missed" (the missed-run policy applies)
    grace: Duration = 60.0


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    bus: BusSettings = BusSettings()
    auth: AuthSettings = AuthSettings()
    ssh: SSHSettings = SSHSettings()
    execution: ExecutionSettings = ExecutionSettings()
    output: OutputSettings = OutputSettings()
    roles: dict[str, RoleSettings] = Field(default_factory=dict)
    audit: AuditSettings = AuditSettings()
    policy: PolicySettings = PolicySettings()
    secrets: SecretsSettings = SecretsSettings()
    gitops: GitOpsSettings = GitOpsSettings()
    notify: NotifySettings = NotifySettings()
    tickets: TicketSettings = TicketSettings()
    sop: SopSettings = SopSettings()
    schedules: ScheduleSettings = ScheduleSettings()
    terminal: TerminalSettings = TerminalSettings()
    #: the folder relative paths were resolved against (set by the loader)
    base_dir: str = "."

    @property
    def database_url(self) -> str:
        """SQLAlchemy async URL for the configured database."""
        if self.database.driver == "sqlite3":
            return f"sqlite+aiosqlite:///{self.database.source}"
        src = self.database.source
        for prefix in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
            if src.startswith(prefix):
                return "postgresql+asyncpg://" + src[len(prefix):]
        raise ConfigError("database.source: with driver postgres, give a postgresql:// URL")


def config_path(given: str | None) -> Path:
    """The config file to use: ``--config``, else ``$SMALLYI_CONFIG``, else ``./config.yaml``."""
    return Path(given or os.environ.get("SMALLYI_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: str | Path) -> Settings:
    """Read and validate a config file; every problem becomes one ConfigError naming file and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} not found; pass --config FILE or set SMALLYI_CONFIG "
            "(`small-yi init` writes a starter file)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text (byte {exc.start}); is it the right file?") from None
    return parse_settings(text, source=str(p), base_dir=p.resolve().parent)


def parse_settings(text: str, *, source: str = "config", base_dir: Path | None = None) -> Settings:
    """Settings from YAML text (pure but for ``~`` expansion); see load_settings."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}:{where}: YAML syntax error: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (database, auth, ...) at the top")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + _describe(exc, raw)) from None
    return _resolve_paths(settings, base_dir or Path.cwd())


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    msgs = []
    for err in exc.errors():
        loc = list(err["loc"])
        dotted = ".".join(str(x) for x in loc)
        if err["type"] == "extra_forbidden":
            msgs.append(f"unknown key {dotted!r}; check its spelling against docs/config.md")
            continue
        who = ""
        if len(loc) >= 3 and loc[:2] == ["auth", "users"] and isinstance(loc[2], int):
            users = raw.get("auth", {}).get("users", [])
            if loc[2] < len(users) and isinstance(users[loc[2]], dict):
                who = f" (user {users[loc[2]].get('username')!r})"
        msg = str(err["msg"]).removeprefix("Value error, ")
        msgs.append(f"{dotted}{who}: {msg}")
    return "; ".join(msgs)


def _resolve_paths(s: Settings, base: Path) -> Settings:
    def fix(p: str | None) -> str | None:
        if p is None:
            return None
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    db = s.database
    if db.driver == "sqlite3" and db.source != ":memory:":
        db = db.model_copy(update={"source": fix(db.source)})
    server = s.server.model_copy(update={"pid_file": fix(s.server.pid_file)})
    ssh = s.ssh.model_copy(update={"private_key": fix(s.ssh.private_key), "known_hosts": fix(s.ssh.known_hosts),
                                   "config_file": fix(s.ssh.config_file)})
    out = s.output.model_copy(update={"full_log_dir": fix(s.output.full_log_dir)})
    sec = s.secrets
    key = sec.master_key or os.environ.get(sec.master_key_env) or None
    sec = sec.model_copy(update={"master_key": key, "key_file": fix(sec.key_file)})
    aud = s.audit
    audit_file = fix(aud.key_file) if aud.key_file else str(Path(str(sec.key_file)).with_name("audit.key"))
    anchor = fix(aud.anchor_file) if aud.anchor_file else str(Path(str(audit_file)).with_name("audit.anchor"))
    aud = aud.model_copy(update={"mac_key": aud.mac_key or os.environ.get(aud.mac_key_env) or None,
                                 "key_file": audit_file, "anchor_file": anchor})
    return s.model_copy(update={"server": server, "database": db, "ssh": ssh, "output": out, "secrets": sec,
                                "audit": aud,
                                "base_dir": str(base)})


#: a URL with an authority part, up to the next white space
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact_url(text: str) -> str:
    """``text`` (a URL, or a message quoting URLs) fit for a message or log: every URL's password replaced by
    ``***``. The password runs to the last ``@`` of the authority, as clients read it, so an empty user
    (``https://:TOKEN@host``) or an unencoded ``@`` in the password shows none of it."""

    def one(m: re.Match[str]) -> str:
        url = m.group(0)
        netloc = urlsplit(url).netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if not at or ":" not in userinfo:
            return url
        return url.replace(netloc, f"{userinfo.split(':', 1)[0]}:***@{hostport}", 1)

    return _URL.sub(one, text)
