"""Table models: one declarative base for SQLite and PostgreSQL.

Times are stored as timezone-aware UTC. Output is archived per host bounded (head + tail) in
``results``; the line-by-line stream (for replay to live viewers) lives in ``task_output``, batched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# BIGINT autoincrement that is also SQLite's ROWID alias
BigID = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(64), default="admin")
    password_hash: Mapped[str] = mapped_column(String(100))
    #: "config" users are re-synced from the config file at every start
    source: Mapped[str] = mapped_column(String(16), default="config")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the groups ``role`` is granted over; empty means every group (added by 0005_security)
    groups: Mapped[list[Any]] = mapped_column(default=list)


class ApiToken(Base):
    """A bearer token: a login session (``kind="session"``) or a long-lived API token. Stored hashed."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: first characters of the token, shown in lists so a user can tell tokens apart
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    #: login user; empty means the config's ``ssh.user``
    user: Mapped[str] = mapped_column(String(128), default="")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: "ssh" or "local" (the server itself)
    connector: Mapped[str] = mapped_column(String(16), default="ssh")
    #: the host's own SSH settings (``inventory.hosts.SSHOverrides``); {}: the config's
    ssh: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: where the host came from: "manual", "import", "git", "builtin"
    source: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HostGroup(Base):
    __tablename__ = "host_groups"
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    #: "command" (ad-hoc run) or "logs" (follow files)
    kind: Mapped[str] = mapped_column(String(16), default="command")
    command: Mapped[str] = mapped_column(Text)
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="", index=True)
    #: who runs it: "server:<host>:<pid>" or "cli:<host>:<pid>" (start-up recovery reads it)
    runner: Mapped[str] = mapped_column(String(255), default="")
    #: set (to who asked) when a cancel is requested; the process running the task acts on it
    cancel_requested: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    timeout: Mapped[float] = mapped_column(Float)
    concurrency: Mapped[int] = mapped_column(Integer)
    rate: Mapped[float] = mapped_column(Float, default=0.0)
    host_count: Mapped[int] = mapped_column(Integer, default=0)
    #: counts of hosts by final status, e.g. {"success": 9, "failed": 1}
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: how many output events the task produced (the last sequence number)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the task's own notification: {"channels": [...], "on": [...]} ({}: only the ``notify.tasks`` rule)
    notify: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Result(Base):
    """One host's outcome within one task, with its bounded archived output."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("task_id", "host_name"),
        Index("ix_results_host_status_started", "host_name", "status", "started_at"),
        Index("ix_results_status_started", "status", "started_at"),
        Index("ix_results_started", "started_at"),
        #: a host's latest result in one backward index step (the host list's status filter)
        Index("ix_results_host_id", "host_name", "id"),
    )
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    host_name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    #: total bytes the host printed, and how many of them were cut from the archive
    stdout_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stderr_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    stdout_cut: Mapped[int] = mapped_column(BigInteger, default=0)
    stderr_cut: Mapped[int] = mapped_column(BigInteger, default=0)
    #: hash of (exit code, stdout, stderr): hosts with equal digests printed the same
    output_digest: Mapped[str] = mapped_column(String(16), default="")
    full_log: Mapped[str | None] = mapped_column(Text, default=None)


class TaskOutput(Base):
    """Output events in sequence, for replay to viewers that (re)connect; written in batches."""

    __tablename__ = "task_output"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    host_name: Mapped[str] = mapped_column(String(255))
    #: "stdout", "stderr" or "status" (a host's final status, ``data`` is JSON), "cut" (lines dropped)
    stream: Mapped[str] = mapped_column(String(8))
    data: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class UserPreference(Base):
    """Console settings remembered per user (language, ...), kept server-side so they follow the user."""

    __tablename__ = "user_preferences"
    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), default="en")
    #: other console settings, free-form
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TerminalSession(Base):
    """One web-terminal session: who opened a shell on which host, from where, when, and how it ended.

    The audit trail reads these rows; the recording (asciicast v2) is in ``terminal_chunks``.
    """

    __tablename__ = "terminal_sessions"
    __table_args__ = (Index("ix_terminal_sessions_host_started", "host_name", "started_at"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    username: Mapped[str] = mapped_column(String(128), index=True)
    host_name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255), default="")
    login_user: Mapped[str] = mapped_column(String(128), default="")
    client_address: Mapped[str] = mapped_column(String(255), default="")
    #: the server process holding the session ("server:<host>:<pid>"), to tell dead sessions at start
    runner: Mapped[str] = mapped_column(String(255), default="")
    #: "open", "closed" (by the user), "idle" (idle timeout), "failed", "interrupted"
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason: Mapped[str] = mapped_column(Text, default="")
    cols: Mapped[int] = mapped_column(Integer, default=80)
    rows: Mapped[int] = mapped_column(Integer, default=24)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    #: bytes the host sent and the user typed; the recording is cut past its limit
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    input_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    recording_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    recording_truncated: Mapped[bool] = mapped_column(Boolean, default=False)


class TerminalChunk(Base):
    """A piece of a session's asciicast v2 recording (newline-separated event lines), in order."""

    __tablename__ = "terminal_chunks"
    session_id: Mapped[int] = mapped_column(
        ForeignKey("terminal_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[str] = mapped_column(Text)


class AuditRecord(Base):
    """One audit record; ``hash`` chains it to the record before (see ``smallyi.audit.chain``).

    Append-only: nothing updates a row, and only the retention purge deletes (the oldest, leaving an
    anchor in ``audit_head``). ``id`` is the position in the chain, given by ``audit_head.seq``.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_actor_at", "actor", "at"), Index("ix_audit_log_action_at", "action", "at"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    #: where the action came from: "api", "cli", "server" (the server on its own), "system"
    source: Mapped[str] = mapped_column(String(16), default="")
    client: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(String(32), default="")
    #: the permission the action used (the permission-matrix report reads it)
    perm: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: 0: written before MACs existed; 1: HMAC-SHA256 of id and hash under the audit key ``mac_key``
    mac_version: Mapped[int] = mapped_column(SmallInteger, default=0)
    mac_key: Mapped[str] = mapped_column(String(16), default="")
    mac: Mapped[str] = mapped_column(String(64), default="")


class AuditHead(Base):
    """The chain's single head row: the last id and hash, and the anchor left by the last purge."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    #: records up to this id were purged; ``anchor_hash`` is the hash of that last purged record
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    #: the first record id that must carry a MAC (the ones before were written before MACs existed)
    mac_from: Mapped[int] = mapped_column(BigInteger, default=1)
    mac_key: Mapped[str] = mapped_column(String(16), default="")
    #: HMAC over seq, hash, the anchor and mac_from: none of them can be moved unnoticed
    mac: Mapped[str] = mapped_column(String(64), default="")


class HostKeyPin(Base):
    """A host key trusted on first use (``ssh.host_key_policy: accept-new``), pinned per address:port."""

    __tablename__ = "host_key_pins"
    #: ``address`` or ``[address]:port``, as a known_hosts line names the host
    host: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: "ssh-ed25519 AAAA..." (one line per key type the host showed)
    key_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(128))
    pinned_at: Mapped[datetime] = mapped_column(default=utcnow)


class SecretValue(Base):
    """A secret encrypted at rest (AES-256-GCM under the master key); the API never returns ``ciphertext``."""

    __tablename__ = "secrets"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: "ssh-key", "password", "webhook", "token", "other"
    kind: Mapped[str] = mapped_column(String(32), default="other")
    description: Mapped[str] = mapped_column(Text, default="")
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")


class Approval(Base):
    """A command held by a "dangerous" policy rule until a second person approves or rejects it."""

    __tablename__ = "approvals"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    #: "pending", "approved", "rejected", "expired"
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(Text)
    #: the task request: target selector, timeout, concurrency, rate
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the rule that asked for approval, and why
    rule: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    decided_by: Mapped[str] = mapped_column(String(128), default="")
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    task_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


class GitSync(Base):
    """One GitOps sync (or rollback, or drift check): the commit it applied and how it went."""

    __tablename__ = "gitops_syncs"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    #: "sync", "rollback" or "drift"
    kind: Mapped[str] = mapped_column(String(16), default="sync")
    #: what started it: "webhook", "poll", "cli", "api", "schedule"
    trigger: Mapped[str] = mapped_column(String(16), default="")
    commit: Mapped[str] = mapped_column(String(40), index=True)
    branch: Mapped[str] = mapped_column(String(255), default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    #: "running", "success", "failed" (some host did not take it), "error" (nothing was written), "interrupted"
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: files by outcome, e.g. {"changed": 3, "unchanged": 17}; and "hosts": how many were targeted
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the process running it ("server:<host>:<pid>"), to tell interrupted syncs at start
    runner: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class GitSyncFile(Base):
    """One file on one host in a sync: changed / unchanged / failed / restored (drift: drifted / missing)."""

    __tablename__ = "gitops_sync_files"
    __table_args__ = (Index("ix_gitops_sync_files_host_name", "host_name", "sync_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("gitops_syncs.id", ondelete="CASCADE"), index=True)
    host_name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: unified diff from the host's file to the commit's (cut at 64 KiB)
    diff: Mapped[str] = mapped_column(Text, default="")
    #: sha256 of the content the commit wants
    digest: Mapped[str] = mapped_column(String(64), default="")


class GitFileState(Base):
    """What the last sync left in each file it manages (sha256), for the drift check."""

    __tablename__ = "gitops_state"
    host_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    #: sha256 of the file as left; "" when the sync left no file there
    digest: Mapped[str] = mapped_column(String(64))
    commit: Mapped[str] = mapped_column(String(40))
    sync_id: Mapped[int] = mapped_column(BigInteger)
    template: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SopDefinition(Base):
    """A SOP stored in the platform: its YAML as written, and a version bumped on every change."""

    __tablename__ = "sops"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: "platform" (stored through the API/CLI) or "git" (from the GitOps repository's sops/, read-only)
    origin: Mapped[str] = mapped_column(String(16), default="platform")
    #: for origin "git": the repository (credentials redacted), the file and the commit it was stored from
    origin_repo: Mapped[str] = mapped_column(String(512), default="")
    origin_path: Mapped[str] = mapped_column(String(255), default="")
    origin_commit: Mapped[str] = mapped_column(String(40), default="")


class SopRun(Base):
    """One run of a SOP: the exact YAML it ran, who started it, how, and how it ended."""

    __tablename__ = "sop_runs"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    sop_name: Mapped[str] = mapped_column(String(128), default="", index=True)
    sop_version: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(Text)
    #: "running", "success", "failed", "cancelled", "interrupted"
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    #: "cli", "api", "schedule", "sop" (called by another run)
    trigger: Mapped[str] = mapped_column(String(16), default="cli")
    started_by: Mapped[str] = mapped_column(String(128), default="", index=True)
    #: the starter's role and granted groups, so a resumed run keeps their rights
    role: Mapped[str] = mapped_column(String(64), default="admin")
    groups: Mapped[list[Any]] = mapped_column(default=list)
    environment: Mapped[str] = mapped_column(String(64), default="")
    #: the run's default target (``--group``/``--hosts``/``--label``) for steps without one
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    vars: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    parent_step: Mapped[str] = mapped_column(String(64), default="")
    schedule_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: the process running it ("server:<host>:<pid>", "cli:<host>:<pid>"), renewed by ``heartbeat_at``
    runner: Mapped[str] = mapped_column(String(255), default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: steps by status, e.g. {"success": 3, "skipped": 1}
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class SopRunStep(Base):
    """One step of one run: status, attempts, the tasks it ran, its result (what later steps read)."""

    __tablename__ = "sop_run_steps"
    run_id: Mapped[int] = mapped_column(ForeignKey("sop_runs.id", ondelete="CASCADE"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    #: "pending", "running", "waiting", "success", "failed", "skipped", "cancelled", "interrupted"
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    wave: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    task_ids: Mapped[list[Any]] = mapped_column(default=list)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)


class SopRunEvent(Base):
    """A run's events in sequence (step started, finished, waiting for approval, ...), for followers."""

    __tablename__ = "sop_run_events"
    run_id: Mapped[int] = mapped_column(ForeignKey("sop_runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SopApproval(Base):
    """A person's go/no-go on an ``approval`` step; the run waits on this row, across restarts."""

    __tablename__ = "sop_approvals"
    __table_args__ = (UniqueConstraint("run_id", "step_id"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sop_runs.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(64))
    #: "pending", "approved", "rejected", "expired", "cancelled"
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    #: user names allowed to decide (empty: anyone with approvals.decide but the requester)
    approvers: Mapped[list[Any]] = mapped_column(default=list)
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    decided_by: Mapped[str] = mapped_column(String(128), default="")
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Ticket(Base):
    """A ticket opened in the configured ticket system, with the id and URL it answered."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    step_id: Mapped[str] = mapped_column(String(64), default="")
    template: Mapped[str] = mapped_column(String(128))
    #: "created" or "failed"
    status: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    requester: Mapped[str] = mapped_column(String(128), default="")
    sla: Mapped[str] = mapped_column(String(64), default="")
    hosts: Mapped[list[Any]] = mapped_column(default=list)
    title: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Schedule(Base):
    """A cron schedule of a command or a SOP, with its time zone and its missed-run and overlap policies."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    #: 5-field cron, ``@every 10m`` or ``@daily``-style shorthand
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: "command" or "sop"
    kind: Mapped[str] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(Text, default="")
    target: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timeout: Mapped[float | None] = mapped_column(Float, default=None)
    sop_name: Mapped[str] = mapped_column(String(128), default="")
    vars: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[str] = mapped_column(String(64), default="")
    #: slots missed while no scheduler ran: "skip" them, or "run_once" for the latest
    missed: Mapped[str] = mapped_column(String(16), default="skip")
    #: "skip" a slot while the previous run still runs, or "allow" overlapping runs
    overlap: Mapped[str] = mapped_column(String(16), default="skip")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: {"channels": [...], "on": ["failure", ...]}
    notify: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(64), default="admin")
    groups: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduleFire(Base):
    """One slot of one schedule, claimed by exactly one scheduler: the unique row is the lock."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("schedule_id", "slot"), Index("ix_schedule_fires_fired", "fired_at"))
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    #: the slot's time (UTC), whatever time the scheduler noticed it
    slot: Mapped[datetime] = mapped_column()
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    runner: Mapped[str] = mapped_column(String(255), default="")
    #: "running", "success", "failed", "skipped" (overlap), "missed", "error"
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    task_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)


class NotifyChannel(Base):
    """Where notifications go: a vendor bot or webhook; its URL and signing secret encrypted at rest."""

    __tablename__ = "notify_channels"
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    #: "wecom", "dingtalk", "feishu", "slack", "webhook"
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    url_cipher: Mapped[str] = mapped_column(Text)
    secret_cipher: Mapped[str] = mapped_column(Text, default="")
    #: vendor options (mentions, ...) and the message template override
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyDelivery(Base):
    """One message to one channel: retried with backoff; failures stay visible here, never fail a task."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (UniqueConstraint("channel", "event_key"),)
    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    channel: Mapped[str] = mapped_column(String(128))
    #: what happened, once per channel: "sop_run:5:finish" (a second replica's copy is refused by the key)
    event_key: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(32), default="")
    subject: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    #: "pending", "sent", "failed"
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
