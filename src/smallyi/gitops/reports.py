"""What GitOps reports: a file's outcome, a sync record's kind and status, and the shapes of the records,
plans, status and webhook answers the service returns.

The API answers these as they are (``api/schemas/gitops.py`` describes the same shapes), the CLI prints
them, and ``gitops.notify`` reads finished records. Pure.
"""

from __future__ import annotations

import enum
from typing import Literal, NotRequired, TypedDict


class FileStatus(enum.StrEnum):
    """A file's outcome in a sync (and, for a plan, what would happen)."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    #: the check failed and the previous file (or its absence) was put back
    RESTORED = "restored"
    FAILED = "failed"
    #: drift check: the host's file differs from what the last sync wrote
    DRIFTED = "drifted"
    #: drift check: the file the last sync wrote is gone
    MISSING = "missing"


class SyncKind(enum.StrEnum):
    """What a GitOps record is: a sync, a rollback to an earlier commit, or a drift check."""

    SYNC = "sync"
    #: an earlier commit of the branch, distributed like a sync
    ROLLBACK = "rollback"
    #: a check that every synced file still holds what the last sync left there
    DRIFT = "drift"


class SyncStatus(enum.StrEnum):
    """Where a sync, rollback or drift check stands. The last four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    #: some host did not take the commit (a drift check: drift found, or a file could not be read)
    FAILED = "failed"
    #: nothing was written: the commit could not be rendered, or its hosts not imported
    ERROR = "error"
    #: the process stopped during the sync
    INTERRUPTED = "interrupted"

    @property
    def final(self) -> bool:
        return self not in (SyncStatus.QUEUED, SyncStatus.RUNNING)


class CommitInfo(TypedDict):
    """A commit as templates see it (``commit``) and the API shows it."""

    sha: str
    short: str
    author: str
    email: str
    date: str
    message: str
    subject: str
    branch: str


class FileResult(TypedDict):
    """One file on one host: its outcome (a plan: what would happen), why, and its diff."""

    host: str
    path: str
    template: str
    status: FileStatus
    reason: str
    diff: str
    digest: str


class HostResult(TypedDict):
    """A host's files, and the host's result: its most telling file status."""

    host: str
    status: FileStatus
    files: list[FileResult]


class SopFileProblem(TypedDict):
    """A problem in one of the commit's ``sops/`` files, with where it is and the whole on one line."""

    file: str
    line: int | None
    step: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"]
    text: str


class SopsReport(TypedDict):
    """What storing a commit's SOPs did (a plan: would do), by name; only ``problems`` if storing failed."""

    created: NotRequired[list[str]]
    updated: NotRequired[list[str]]
    unchanged: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    problems: list[SopFileProblem]


class SyncCounts(TypedDict, total=False):
    """Files by status and hosts by result; empty until a record ends (and when it ended in ``error``)."""

    #: file status → how many files had it
    files: dict[str, int]
    #: host result → how many hosts had it
    hosts: dict[str, int]
    host_count: int
    #: present when the sync stored SOPs
    sops: SopsReport


class SyncSummary(TypedDict):
    """A sync, rollback or drift record without its files."""

    id: int
    kind: SyncKind
    #: api, webhook, poll, cli or schedule
    trigger: str
    status: SyncStatus
    reason: str
    commit: str
    short: str
    branch: str
    author: str
    message: str
    requested_by: str
    counts: SyncCounts
    sops: SopsReport | None
    started_at: str
    finished_at: str | None


class SyncRecord(SyncSummary):
    """A record with every host's files."""

    hosts: list[HostResult]


class SyncPlan(TypedDict):
    """What syncing a commit would change on each host; ``sops`` when SOPs are stored from Git."""

    commit: CommitInfo
    counts: SyncCounts
    hosts: list[HostResult]
    sops: NotRequired[SopsReport]


class GitOpsStatus(TypedDict):
    enabled: bool
    repo: str
    branch: str
    poll_interval: float
    drift_interval: float
    webhook: bool
    last_sync: SyncSummary | None
    last_drift: SyncSummary | None
    managed_files: int
    managed_hosts: int


class WebhookAnswer(TypedDict):
    """A push taken (``accepted``: a sync is queued), ``ignored`` (not a push to the branch) or a ``duplicate``."""

    status: Literal["accepted", "ignored", "duplicate"]
    reason: NotRequired[str]
    commit: NotRequired[str]
    #: the sync that takes (or took) the commit; None for a duplicate still on its way
    sync: NotRequired[int | None]
