"""Tasks: create, list, show, cancel, results, and the live output stream (WebSocket, resumable)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from smallyi.api.deps import Paging, State, User, accept_websocket, client_address, listing
from smallyi.api.guards import ArchiveScope, archive_scope
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import ErrorOut, Page
from smallyi.api.schemas.approvals import ApprovalHeldOut
from smallyi.api.schemas.tasks import (
    OutputEventOut,
    ResultOut,
    SummaryOut,
    TaskCancelOut,
    TaskDetailOut,
    TaskOut,
)
from smallyi.api.targets import TargetIn
from smallyi.approvals.requests import approval_dict
from smallyi.auth.caller import Caller
from smallyi.auth.gate import Held
from smallyi.auth.rbac import EVERY_HOST, HostScope
from smallyi.durations import parse_rate, parse_timeout
from smallyi.errors import SmallYiError
from smallyi.notify.tasks import check_channels, task_notify
from smallyi.policy import command_text
from smallyi.runtime import Runtime
from smallyi.tasks.queries import ResultFilter, TaskFilter, parse_window, result_dict, task_dict
from smallyi.tasks.reasons import KEEP_HOSTS
from smallyi.tasks.service import TaskRequest
from smallyi.tasks.stream import open_stream
from smallyi.tasks.summary import LIST_ALL_UP_TO, summarize

router = APIRouter(tags=["tasks"])
#: the refusals these routes add to the common ones
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such task (among those the caller may read)"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "the task already finished"}}
# response_model_exclude_unset: a target names only the parts it was given, an output event only the
# keys of its kind; keys left out stay out (not null)


When = Literal["success", "failure", "finish"]


def _on_failure() -> list[When]:
    return ["failure"]


class NotifyIn(BaseModel):
    """The task's own notification: these channels, on success / failure / finish (as a SOP's ``notify``)."""

    model_config = ConfigDict(extra="forbid")
    channels: list[str] = Field(min_length=1, max_length=20)
    on: list[When] = Field(default_factory=_on_failure, min_length=1)


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: TargetIn
    cmd: str = Field(min_length=1)
    #: Go duration ("10s") or seconds
    timeout: str | float | None = None
    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    #: new connections per second: "20/s" or a number
    rate: str | float | None = None
    #: tell these channels how it went (unknown channels are refused before anything runs)
    notify: NotifyIn | None = None

    @field_validator("cmd")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the command is empty")
        why = command_text.problem(v)
        if why is not None:
            raise ValueError(why)
        return v


def request_from(body: TaskIn) -> TaskRequest:
    selector = body.target.selector()
    timeout = None if body.timeout is None else parse_timeout(body.timeout, field="timeout")
    notify = task_notify(body.notify.channels, body.notify.on) if body.notify else None
    return TaskRequest(selector, body.cmd, timeout=timeout, concurrency=body.concurrency, rate=parse_rate(body.rate),
                       notify=notify)


@router.post("/tasks", status_code=201, dependencies=[needs(Perm.TASKS_RUN)], response_model=TaskOut,
             response_model_exclude_unset=True,
             responses={202: {"model": ApprovalHeldOut, "description": "held for a second person's approval"}})
async def create_task(body: TaskIn, user: User, state: State, request: Request) -> Any:
    """Run a command on a target; answers at once with the queued task (follow it on /stream).

    A command the policy marks dangerous answers 202 with the approval it waits for instead.
    """
    req = request_from(body)
    if req.notify:
        from smallyi.sop import automation  # the server's notification channels

        await check_channels(automation.of(state).notify.channels, req.notify["channels"])
    submitted = await state.tasks.submit(req, Caller.of(user, client=client_address(request)))
    if isinstance(submitted, Held):
        row = await state.approvals.get(submitted.approval_id)
        return JSONResponse(jsonable_encoder({"approval": approval_dict(row), "message": submitted.message}), 202)
    # the task row (no output) to the user who just created it
    return await _task_out(state, submitted.task_id, EVERY_HOST)


async def _task_out(state: Runtime, task_id: int, scope: HostScope) -> dict[str, Any]:
    t = await state.archive.task(task_id, scope=scope)
    return task_dict(t, queue_position=state.tasks.queue_position(task_id))


@router.get("/tasks", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[TaskOut],
            response_model_exclude_unset=True)
async def list_tasks(
    scope: ArchiveScope, state: State, page: Paging,
    status: str | None = None, since: str | None = None, until: str | None = None,
    command: str | None = None, created_by: str | None = None,
) -> dict[str, Any]:
    since_at, until_at = parse_window(since, until)
    f = TaskFilter(status=status, command=command, created_by=created_by, since=since_at, until=until_at)
    rows, total = await state.archive.tasks(f, scope=scope, limit=page.limit, offset=page.offset)
    return listing([task_dict(t, queue_position=state.tasks.queue_position(t.id)) for t in rows], total)


@router.get("/tasks/{task_id}", dependencies=[needs(Perm.TASKS_READ)], response_model=TaskDetailOut,
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def get_task(task_id: int, scope: ArchiveScope, state: State) -> dict[str, Any]:
    """A task with at least one host the caller may read; ``groups`` covers only those hosts."""
    out = await _task_out(state, task_id, scope)
    out["groups"] = await state.archive.output_groups(task_id, scope=scope)
    return out


@router.post("/tasks/{task_id}/cancel", status_code=202, dependencies=[needs(Perm.TASKS_CANCEL)],
             response_model=TaskCancelOut, responses={**NOT_FOUND, **CONFLICT})
async def cancel_task(task_id: int, user: User, state: State) -> dict[str, Any]:
    what = await state.tasks.cancel(task_id, user=user.username)
    return {"id": task_id, "result": what}


@router.get("/tasks/{task_id}/results", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[ResultOut],
            responses=NOT_FOUND)
async def task_results(task_id: int, scope: ArchiveScope, state: State, page: Paging,
                       status: str | None = None) -> dict[str, Any]:
    """The task's per-host results, of the hosts the caller may read."""
    await state.archive.task(task_id, scope=scope)
    rows, total = await state.archive.results(
        ResultFilter(task=task_id, status=status), scope=scope, limit=page.limit, offset=page.offset
    )
    return listing([result_dict(r) for r in rows], total)


@router.get("/tasks/{task_id}/output", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[OutputEventOut],
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def task_output(
    task_id: int, scope: ArchiveScope, state: State,
    after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Archived output events after sequence ``after`` (the WebSocket stream replays the same), of the
    hosts the caller may read."""
    await state.archive.task(task_id, scope=scope)
    events = await state.tasks.archived_events(task_id, after, limit, scope=scope)
    return listing(events, len(events))


@router.get("/tasks/{task_id}/summary", dependencies=[needs(Perm.TASKS_READ)], response_model=SummaryOut,
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def task_summary(
    task_id: int, scope: ArchiveScope, state: State,
    list_all_up_to: Annotated[int, Query(ge=0, le=100_000)] = LIST_ALL_UP_TO,
    results: bool = True,
    hosts_per_reason: Annotated[int, Query(ge=0, le=1000)] = KEEP_HOSTS,
) -> dict[str, Any]:
    """The task, its hosts (those the caller may read) counted by status, each distinct reason of those
    that did not succeed once (with how many hosts and the first ``hosts_per_reason``), and the results
    worth listing: every host's up to ``list_all_up_to`` hosts, else only those that did not succeed
    (``listed``; none with ``results=false``). What ``small-yi run --server`` prints at the end, without
    fetching every host's output."""
    task = await _task_out(state, task_id, scope)
    return {"task": task, **await summarize(state.db, task_id, scope=scope, list_all_up_to=list_all_up_to,
                                            results=results, hosts_per_reason=hosts_per_reason)}


@router.get("/results", dependencies=[needs(Perm.TASKS_READ)], response_model=Page[ResultOut])
async def list_results(
    scope: ArchiveScope, state: State, page: Paging,
    host: str | None = None, status: str | None = None, since: str | None = None,
    until: str | None = None, task: int | None = None,
) -> dict[str, Any]:
    since_at, until_at = parse_window(since, until)
    f = ResultFilter(host=host, status=status, task=task, since=since_at, until=until_at)
    rows, total = await state.archive.results(f, scope=scope, limit=page.limit, offset=page.offset)
    return listing([result_dict(r) for r in rows], total)


@router.websocket("/tasks/{task_id}/stream", dependencies=[needs(Perm.TASKS_READ)])
async def stream(ws: WebSocket, task_id: int, after: int = 0) -> None:
    """Every output event of a task from sequence ``after`` on: the archive first, then live.

    Messages: ``{"type": "events", "events": [...]}`` then ``{"type": "end", "task": {...}}``.
    A client that reconnects with the last ``seq`` it saw misses nothing and sees nothing twice.
    Only events of hosts the caller may read are sent (live and replayed alike).
    """
    state: Runtime = ws.app.state.smallyi
    user = await accept_websocket(ws)
    if user is None:
        return
    try:
        messages = await open_stream(state.tasks, state.archive, task_id, after=after, scope=archive_scope(user))
    except SmallYiError as exc:
        await ws.close(code=4404, reason=exc.message[:120])
        return
    async with contextlib.aclosing(messages):
        try:
            async for text in messages:
                await ws.send_text(text)
            await ws.close()
        except WebSocketDisconnect:
            return
