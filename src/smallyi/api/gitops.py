"""GitOps: status, plan, sync, rollback, drift, the sync history, and the push webhook."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import Paging, State, User, accept_websocket, client_address, listing
from smallyi.api.permissions import PUBLIC, Perm, needs
from smallyi.api.schemas import Page
from smallyi.api.schemas.gitops import (
    CommitOut,
    GitOpsPlanOut,
    GitOpsStatusOut,
    SyncAnswerOut,
    SyncDetailOut,
    SyncOut,
    SyncStartedOut,
    WebhookOut,
)
from smallyi.errors import ConfigError, InputError
from smallyi.gitops.reports import GitOpsStatus, SyncKind, SyncPlan, SyncRecord, WebhookAnswer
from smallyi.gitops.service import GitOpsService, topic

router = APIRouter(tags=["gitops"])

#: the largest webhook body read (GitHub caps push payloads at 25 MB; config repos send far less)
MAX_WEBHOOK_BYTES = 10 * 1024 * 1024

#: a sync or rollback without ``wait`` answers 202 with the queued record's id
STARTED: dict[int | str, dict[str, Any]] = {
    202: {"model": SyncStartedOut, "description": "queued: follow it at /gitops/syncs/{sync}"}}


class SyncIn(BaseModel):
    """What to sync: a commit (id, branch or tag; default: the branch head)."""

    model_config = ConfigDict(extra="forbid")
    commit: str | None = Field(default=None, max_length=255)
    #: answer when the sync is over (the record with every file), rather than at once with its id
    wait: bool = False


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=255)
    wait: bool = False


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commit: str | None = Field(default=None, max_length=255)


def _service(state: State) -> GitOpsService:
    svc = state.gitops
    if svc is None:  # pragma: no cover - the runtime always builds one
        raise ConfigError("GitOps is not available in this process")
    return svc


@router.get("/gitops/status", dependencies=[needs(Perm.GITOPS_READ)], response_model=GitOpsStatusOut,
            response_model_exclude_unset=True)
async def status(state: State, user: User) -> GitOpsStatus:
    """Whether GitOps is on, the repository and branch, the last sync and drift check."""
    return await _service(state).status()


@router.get("/gitops/commits", dependencies=[needs(Perm.GITOPS_READ)], response_model=Page[CommitOut])
async def commits(state: State, user: User, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    """The branch's latest commits (fetched now), newest first: what a rollback can go to."""
    items = await _service(state).commits(limit)
    return listing(items, len(items))


@router.post("/gitops/plan", dependencies=[needs(Perm.GITOPS_READ)], response_model=GitOpsPlanOut,
             response_model_exclude_unset=True)
async def plan(body: PlanIn, state: State, user: User) -> SyncPlan:
    """What a sync would change on each host, with diffs; nothing is written."""
    return await _service(state).plan(body.commit)


@router.post("/gitops/sync", dependencies=[needs(Perm.GITOPS_SYNC)],
             response_model=SyncAnswerOut, responses=STARTED, response_model_exclude_unset=True)
async def sync(body: SyncIn, state: State, user: User, response: Response) -> SyncRecord | dict[str, int]:
    """Sync a commit: 202 with the record's id at once, or (``wait``) the finished record."""
    svc = _service(state)
    if body.wait:
        return await svc.sync(body.commit, trigger="api", user=user.username)
    response.status_code = 202
    return {"sync": await svc.start(SyncKind.SYNC, body.commit, trigger="api", user=user.username)}


@router.post("/gitops/rollback", dependencies=[needs(Perm.GITOPS_SYNC)],
             response_model=SyncAnswerOut, responses=STARTED, response_model_exclude_unset=True)
async def rollback(body: RollbackIn, state: State, user: User, response: Response) -> SyncRecord | dict[str, int]:
    """Re-render an earlier commit and distribute it like a sync."""
    svc = _service(state)
    if body.wait:
        return await svc.rollback(body.to, trigger="api", user=user.username)
    response.status_code = 202
    return {"sync": await svc.start(SyncKind.ROLLBACK, body.to, trigger="api", user=user.username)}


@router.post("/gitops/drift", dependencies=[needs(Perm.GITOPS_SYNC)], response_model=SyncDetailOut,
             response_model_exclude_unset=True)
async def drift(state: State, user: User) -> SyncRecord:
    """Check now that every synced file still holds what the last sync left; answers the check's record."""
    return await _service(state).drift(trigger="api", user=user.username)


@router.get("/gitops/syncs", dependencies=[needs(Perm.GITOPS_READ)], response_model=Page[SyncOut],
            response_model_exclude_unset=True)
async def history(state: State, user: User, paging: Paging,
                  kind: Annotated[str | None, Query(pattern="^(sync|rollback|drift)$")] = None) -> dict[str, Any]:
    """Sync records, newest first (``kind`` filters: sync, rollback, drift)."""
    items, total = await _service(state).history(kind=kind, limit=paging.limit, offset=paging.offset)
    return listing(items, total)


@router.get("/gitops/syncs/{sync_id}", dependencies=[needs(Perm.GITOPS_READ)], response_model=SyncDetailOut,
            response_model_exclude_unset=True)
async def get_sync(sync_id: int, state: State, user: User) -> SyncRecord:
    """One record with every host's files (status, reason, diff)."""
    return await _service(state).get(sync_id)


#: how often a sync's stream re-reads its record while no event comes (a sync in another process)
RECHECK = 2.0


@router.websocket("/gitops/syncs/{sync_id}/stream", dependencies=[needs(Perm.GITOPS_READ)])
async def stream(ws: WebSocket, sync_id: int) -> None:
    """Live progress of a sync (``phase`` and ``file`` events, then ``end``); a finished one sends its record."""
    if await accept_websocket(ws) is None:
        return
    svc = _service(ws.app.state.smallyi)
    sub = ws.app.state.smallyi.bus.subscribe(topic(sync_id))
    try:
        record = await svc.get(sync_id)
        events = aiter(sub)
        while not record["status"].final:
            try:  # a sync run by another process (the CLI) has no events here: its record says when it ends
                event = await asyncio.wait_for(anext(events), RECHECK)
            except StopAsyncIteration:
                record = await svc.get(sync_id)
                break
            except TimeoutError:
                record = await svc.get(sync_id)
                continue
            await ws.send_json({"type": "events", "events": [event]})
        await ws.send_json({"type": "end", "sync": record})
    finally:
        sub.close()
        await ws.close()


@router.post("/gitops/webhook", dependencies=[needs(PUBLIC)], response_model=WebhookOut,
             responses={202: {"model": WebhookOut, "description": "accepted: a sync of the pushed commit is queued"}},
             response_model_exclude_unset=True)
async def webhook(request: Request, state: State, response: Response) -> WebhookAnswer:
    """A push from GitHub, GitLab or Gitea; its signature (not a login) authenticates it.

    202 with the queued sync; 200 ``ignored`` (another branch, not a push) or ``duplicate`` (that commit
    is synced already); 401 for a missing or wrong signature (logged and audited).
    """
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_WEBHOOK_BYTES:
            raise InputError(f"the webhook body is larger than {MAX_WEBHOOK_BYTES // (1024 * 1024)} MiB", field="body")
    result = await _service(state).webhook(dict(request.headers), bytes(data), client=client_address(request))
    if result["status"] == "accepted":
        response.status_code = 202
    return result
