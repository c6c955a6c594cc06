"""What the task routes answer: tasks, per-host results, archived output events, summaries.

``TargetOut`` is also the target of approvals and schedules. A target names only the parts it was
given (``{"group": "web"}``), so routes answering one set ``response_model_exclude_unset``: a key the
service leaves out stays out instead of coming back as null.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smallyi.api.schemas import Answer
from smallyi.types import HostStatus, TaskStatus

#: when a task's own notification goes out
When = Literal["success", "failure", "finish"]


class TargetOut(Answer):
    """Which hosts: only the parts given (a group, host names, labels every host must carry)."""

    group: str | None = None
    hosts: list[str] | None = None
    labels: dict[str, str] | None = None


class TaskNotifyOut(Answer):
    channels: list[str]
    on: list[When]


class TaskOut(Answer):
    id: int
    kind: Literal["command", "logs"] = Field(description="an ad-hoc command, or a log follow")
    command: str
    target: TargetOut
    status: TaskStatus
    reason: str = Field(description="why it ended as it did; empty while it runs or when it succeeded")
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    timeout: float = Field(description="seconds each host may run")
    concurrency: int = Field(description="hosts at once")
    rate: float = Field(description="new connections per second (0: no limit)")
    host_count: int
    counts: dict[str, int] = Field(description="finished hosts by status, e.g. {\"success\": 9, \"failed\": 1}")
    last_seq: int = Field(description="the sequence number of the task's last output event")
    duration: float | None = Field(description="seconds from start to finish, once finished")
    queue_position: int | None = Field(description="its place in this server's queue while queued, else null")
    notify: TaskNotifyOut | None = Field(description="the task's own notification, if it asked for one")


class OutputGroupOut(Answer):
    """Hosts that printed the same (same exit code, stdout and stderr)."""

    digest: str = Field(description="hash of exit code and output; empty for hosts without a result yet")
    status: HostStatus
    hosts: list[str]


class TaskDetailOut(TaskOut):
    groups: list[OutputGroupOut] = Field(description="the readable hosts grouped by identical output, largest first")


class TaskCancelOut(Answer):
    id: int
    result: Literal["cancelled while queued", "cancelling", "cancel requested"] = Field(
        description="cancelling: this server runs it; cancel requested: the process running it will stop it")


class ResultOut(Answer):
    """One host's outcome within one task, with its archived (bounded) output."""

    id: int
    task_id: int
    host: str
    address: str
    status: HostStatus
    reason: str
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    duration: float | None
    stdout: str
    stderr: str
    stdout_bytes: int = Field(description="bytes the host printed on stdout, archived or not")
    stderr_bytes: int
    stdout_cut: int = Field(description="bytes of stdout left out of the archive")
    stderr_cut: int
    truncated: bool = Field(description="some output was left out of the archive")
    output_digest: str


class OutputEventOut(Answer):
    """One archived output event, as the task's WebSocket stream sends it.

    ``stdout``/``stderr``: a line in ``text``; ``start``: the host began; ``cut``: lines the archive
    did not keep (``of``, ``lines``, ``bytes``); ``done``: the host ended (``status``, ``exit_code``,
    ``reason``, ``duration``). Keys of other kinds are absent, not null.
    """

    seq: int
    host: str
    stream: Literal["stdout", "stderr", "start", "cut", "done"]
    text: str
    at: str | None
    status: HostStatus | None = None
    exit_code: int | None = None
    reason: str | None = None
    duration: float | None = None
    of: Literal["stdout", "stderr"] | None = None
    lines: int | None = None
    bytes: int | None = None


class ReasonOut(Answer):
    """One distinct reason hosts did not succeed."""

    status: HostStatus
    reason: str = Field(description="the text every host of the group gave, or its template with <address>")
    count: int = Field(description="how many hosts gave it")
    hosts: list[str] = Field(description="the first of them by name (hosts_per_reason)")


class SummaryOut(Answer):
    task: TaskOut
    counts: dict[str, int] = Field(description="the readable hosts by status")
    total: int = Field(description="how many readable hosts")
    reasons: list[ReasonOut]
    listed: Literal["all", "not-success", "none"] = Field(description="which hosts `results` holds")
    results: list[ResultOut]
