"""What the GitOps routes answer: commits, plans, sync records (with their files), status, webhooks.

Some keys are absent on some paths (a queued record's ``counts`` is ``{}``; a plan has ``sops`` only when
SOPs are stored from Git; a webhook answer names a commit only when it took one). Those fields have
defaults here and the routes answer with ``response_model_exclude_unset``, so an absent key stays absent
rather than turning into ``null``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, RootModel

from smallyi.api.schemas import Answer
from smallyi.gitops.reports import FileStatus, SyncKind, SyncStatus

SyncTrigger = Literal["api", "webhook", "poll", "cli", "schedule"]


class CommitOut(Answer):
    """A commit of the branch, as the API shows it."""

    sha: str
    short: str = Field(description="the first 10 characters of sha")
    author: str
    email: str
    date: str = Field(description="the commit's date in UTC (ISO 8601), or as git printed it if unreadable")
    message: str
    subject: str = Field(description="the message's first line")
    branch: str


class SopProblemOut(Answer):
    """A problem in one of the commit's ``sops/`` files."""

    file: str
    line: int | None
    step: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"]
    text: str = Field(description="the problem on one line, with where it is")


class SopsReportOut(Answer):
    """What storing the commit's SOPs did (a plan: would do); only ``problems`` if storing them failed."""

    created: list[str] = Field(default_factory=list, description="SOP names")
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list, description="git SOPs gone from the commit")
    problems: list[SopProblemOut]


class SyncCountsOut(Answer):
    """Files by status and hosts by result; ``{}`` until a record ends (and when it ended in ``error``)."""

    files: dict[FileStatus, int] = Field(default_factory=dict, description="how many files had each status")
    hosts: dict[FileStatus, int] = Field(default_factory=dict, description="how many hosts had each result")
    host_count: int = Field(default=0, description="the hosts targeted")
    sops: SopsReportOut | None = Field(default=None, description="present when the sync stored SOPs")


class FileOut(Answer):
    """One file on one host: its outcome (a plan: what would happen), why, and its diff."""

    host: str
    path: str
    template: str = Field(description="the repository file it is rendered from")
    status: FileStatus
    reason: str
    diff: str = Field(description="unified diff of the change (cut when very long); \"\" if none")
    digest: str = Field(description="sha256 of the rendered content")


class HostFilesOut(Answer):
    """A host's files, and the host's result: its most telling file status."""

    host: str
    status: FileStatus
    files: list[FileOut]


class SyncOut(Answer):
    """A sync, rollback or drift record (without its files)."""

    id: int
    kind: SyncKind
    trigger: SyncTrigger
    status: SyncStatus
    reason: str = Field(description="why it failed or ended in error; \"\" otherwise")
    commit: str = Field(description="the commit's full id (a drift check: the last sync's, or zeros)")
    short: str
    branch: str
    author: str
    message: str
    requested_by: str
    counts: SyncCountsOut
    sops: SopsReportOut | None = Field(description="what the sync did with the commit's SOPs, if anything")
    started_at: str
    finished_at: str | None


class SyncDetailOut(SyncOut):
    """A record with every host's files."""

    hosts: list[HostFilesOut]


class SyncStartedOut(Answer):
    """A sync or rollback queued in the background (202): follow it at /gitops/syncs/{sync}."""

    sync: int = Field(description="the record's id")


class SyncAnswerOut(RootModel[SyncDetailOut | SyncStartedOut]):
    """A sync or rollback: the finished record (``wait``), or 202 with the queued record's id.

    A root model (not an ``Answer``) because the route answers one of two shapes; each is strict.
    """


class GitOpsPlanOut(Answer):
    """What syncing a commit would change on each host; nothing was written."""

    commit: CommitOut
    counts: SyncCountsOut
    hosts: list[HostFilesOut]
    sops: SopsReportOut | None = Field(default=None, description="what would happen to the commit's SOPs; "
                                       "absent when SOPs are not stored from Git")


class GitOpsStatusOut(Answer):
    enabled: bool
    repo: str = Field(description="the repository (credentials redacted); \"\" when GitOps is off")
    branch: str
    poll_interval: float = Field(description="seconds between polls of the branch; 0: no polling")
    drift_interval: float = Field(description="seconds between drift checks; 0: none")
    webhook: bool = Field(description="whether a webhook secret is set")
    last_sync: SyncOut | None = Field(description="the last finished sync or rollback")
    last_drift: SyncOut | None = Field(description="the last finished drift check")
    managed_files: int
    managed_hosts: int


class WebhookOut(Answer):
    """``accepted`` (202, a sync is queued), ``ignored`` (not a push to the branch) or ``duplicate``."""

    status: Literal["accepted", "ignored", "duplicate"]
    reason: str | None = Field(default=None, description="why it was ignored or a duplicate; absent when accepted")
    commit: str | None = Field(default=None, description="the pushed commit; absent when ignored")
    sync: int | None = Field(default=None, description="the sync that takes (or took) the commit; absent when "
                             "ignored, null for a duplicate still on its way")
