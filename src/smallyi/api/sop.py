"""SOPs: store, validate, plan and run them; follow runs live; decide approvals; list tickets.

This router also carries the schedules and notification routers (``app.py`` includes one router).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api import notifications, schedules
from smallyi.api.deps import Paging, State, User, accept_websocket, client_address, listing
from smallyi.api.errors import error_body
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import ErrorOut, Page
from smallyi.api.schemas.sop import (
    SOP_INVALID,
    SopDetailOut,
    SopListItemOut,
    SopSavedOut,
    ValidationOut,
)
from smallyi.api.schemas.sop_runs import (
    ApprovalOut,
    CancelOut,
    RunEventOut,
    RunStartOut,
    SopRunDetailOut,
    SopRunOut,
    TicketOut,
)
from smallyi.api.targets import TargetIn
from smallyi.approvals.steps import StepApprovalDict, step_approval_dict
from smallyi.auth.service import Principal
from smallyi.errors import SmallYiError
from smallyi.runtime import Runtime
from smallyi.sop import automation, dag, preview
from smallyi.sop.model import Sop, Step
from smallyi.sop.preview import Preview
from smallyi.sop.problems import SopInvalid
from smallyi.sop.records import RunDict, run_dict, step_dict
from smallyi.sop.service import SopService, Starter
from smallyi.sop.statuses import FINAL_RUN, SopRunStatus
from smallyi.sop.store import sop_dict
from smallyi.sop.validate import load_sop
from smallyi.types import ApprovalStatus

router = APIRouter(tags=["sop"])
router.include_router(schedules.router)
router.include_router(notifications.router)

MAX_SOURCE = 512 * 1024
_LAST_RUN = ("id", "status", "started_by", "started_at", "finished_at", "duration")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such SOP, run or approval"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "the state forbids it (a git SOP, a finished run, a decided approval)"}}


class SopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=MAX_SOURCE)
    strict: bool = False


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=MAX_SOURCE)
    strict: bool = False


class RunIn(BaseModel):
    """How to run: variables, an environment to inject, a default target, or only a dry run."""

    model_config = ConfigDict(extra="forbid")
    vars: dict[str, Any] = Field(default_factory=dict)
    environment: str = Field(default="", max_length=64)
    target: TargetIn | None = None
    dry_run: bool = False


class InlineRunIn(RunIn):
    source: str = Field(min_length=1, max_length=MAX_SOURCE)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=2000)


def _svc(state: Runtime) -> SopService:
    return automation.of(state).sop


def _invalid(exc: SopInvalid) -> JSONResponse:
    body = error_body(exc.code, exc.message, "source")
    body["error"]["problems"] = [p.to_dict() for p in exc.problems]
    return JSONResponse(body, 422)


def _plan(sop: Sop) -> dict[str, Any]:
    """The DAG (waves, needs) and, per step, its type and one line saying what it does; handlers apart."""
    def step(st: Step) -> dict[str, Any]:
        return {"id": st.id, "type": st.type, "does": preview.describe(st), "needs": list(st.needs),
                "when": st.when or None, "handler": st.id in sop.handlers}
    return {**dag.plan(sop).to_dict(), "steps": [step(st) for st in sop.steps]}


def _starter(user: Principal, client: str) -> Starter:
    return Starter(user.username, user.role, tuple(user.access.groups), "api", client)


async def _run_or_preview(svc: SopService, sop: Sop, source: str, body: RunIn, user: Principal, request: Request,
                          version: int = 0, name: str = "") -> RunDict | Preview:
    target = body.target.given() if body.target else None
    if body.dry_run:
        return await svc.preview(sop, environment=body.environment, variables=body.vars, target=target)
    run_id = await svc.start(sop, source, starter=_starter(user, client_address(request)), environment=body.environment,
                             variables=body.vars, target=target, version=version, name=name)
    return run_dict(await svc.records.run(run_id))


# -- stored SOPs ----------------------------------------------------------------------------------

@router.get("/sops", response_model=Page[SopListItemOut], dependencies=[needs(Perm.SOP_READ)])
async def list_sops(state: State, user: User) -> dict[str, Any]:
    """Stored SOPs (without their YAML), each with its latest run (``last_run``: id, status, times) or null."""
    svc = _svc(state)
    rows = await svc.store.all()
    items = []
    for r in rows:
        runs, _ = await svc.records.runs(sop=r.name, limit=1)
        last = {k: v for k, v in run_dict(runs[0]).items() if k in _LAST_RUN} if runs else None
        items.append({**sop_dict(r, source=False), "last_run": last})
    return listing(items, len(items))


@router.post("/sops", status_code=201, response_model=SopSavedOut, responses={**SOP_INVALID, **CONFLICT},
             dependencies=[needs(Perm.SOP_WRITE)])
async def create_sop(body: SopIn, state: State, user: User) -> Any:
    """Store a SOP; 422 with every problem (line, step, field) if it does not validate."""
    svc = _svc(state)
    try:
        row, warnings = await svc.store.save(body.name, body.source, by=user.username, knowns=await svc.knowns(),
                                             create=True, strict=body.strict)
    except SopInvalid as exc:
        return _invalid(exc)
    return {**sop_dict(row), "warnings": [w.to_dict() for w in warnings]}


@router.post("/sops/validate", response_model=ValidationOut, dependencies=[needs(Perm.SOP_READ)])
async def validate_sop(body: SourceIn, state: State, user: User) -> dict[str, Any]:
    """Check YAML without storing it: every problem, and the plan when it is valid."""
    sop, problems = await _svc(state).validate(body.source, strict=body.strict)
    valid = sop is not None and not any(not p.warning for p in problems)
    return {"valid": valid, "problems": [p.to_dict() for p in problems],
            "plan": _plan(sop) if valid and sop is not None else None}


@router.get("/sops/{name}", response_model=SopDetailOut, response_model_exclude_unset=True, responses=NOT_FOUND,
            dependencies=[needs(Perm.SOP_READ)])
async def get_sop(name: str, state: State, user: User) -> dict[str, Any]:
    """A stored SOP: its YAML, the plan (waves and needs), its declared ``vars`` with their defaults (null: the
    run must give it), ``var_types`` (each one's type and what it accepts) and the ``environments`` a run can
    inject (its own and the platform's)."""
    svc = _svc(state)
    row = await svc.store.get(name)
    try:
        sop, _ = load_sop(row.source, source=name)
    except SopInvalid as exc:  # stored before a rule it breaks: shown with its problems, to be fixed
        return {**sop_dict(row), "plan": None, "vars": {}, "var_types": {},
                "environments": sorted(state.settings.sop.environments),
                "problems": [p.to_dict() for p in exc.problems]}
    envs = sorted({*state.settings.sop.environments, *sop.environments})
    return {**sop_dict(row), "plan": _plan(sop), "vars": dict(sop.vars),
            "var_types": {n: d.describe() for n, d in sop.var_decls.items()}, "environments": envs}


@router.put("/sops/{name}", response_model=SopSavedOut, responses={**SOP_INVALID, **CONFLICT},
            dependencies=[needs(Perm.SOP_WRITE)])
async def put_sop(name: str, body: SourceIn, state: State, user: User) -> Any:
    """Create or replace (a new version) a stored SOP."""
    svc = _svc(state)
    try:
        row, warnings = await svc.store.save(name, body.source, by=user.username, knowns=await svc.knowns(),
                                             strict=body.strict)
    except SopInvalid as exc:
        return _invalid(exc)
    return {**sop_dict(row), "warnings": [w.to_dict() for w in warnings]}


@router.delete("/sops/{name}", status_code=204, responses={**NOT_FOUND, **CONFLICT},
               dependencies=[needs(Perm.SOP_WRITE)])
async def delete_sop(name: str, state: State, user: User) -> Response:
    await _svc(state).store.delete(name)
    return Response(status_code=204)


@router.post("/sops/{name}/runs", status_code=201, response_model=RunStartOut,
             response_model_exclude_unset=True, responses=NOT_FOUND, dependencies=[needs(Perm.SOP_RUN)])
async def run_sop(name: str, body: RunIn, state: State, user: User, request: Request) -> Any:
    """Start a run of a stored SOP (201 with the run), or with ``dry_run`` show what would run where."""
    svc = _svc(state)
    row = await svc.store.get(name)
    sop, _ = load_sop(row.source, source=name)
    return await _run_or_preview(svc, sop, row.source, body, user, request, version=row.version, name=name)


# -- runs -----------------------------------------------------------------------------------------

@router.post("/sop-runs", status_code=201, response_model=RunStartOut, response_model_exclude_unset=True,
             responses=SOP_INVALID, dependencies=[needs(Perm.SOP_WRITE)])
async def run_inline(body: InlineRunIn, state: State, user: User, request: Request) -> Any:
    """Run YAML given in the request (needs sop.write and sop.run: it is writing and running at once)."""
    user.access.check(Perm.SOP_RUN)
    try:
        sop, _ = load_sop(body.source, source="request", knowns=await _svc(state).knowns())
    except SopInvalid as exc:
        return _invalid(exc)
    return await _run_or_preview(_svc(state), sop, body.source, body, user, request)


@router.get("/sop-runs", response_model=Page[SopRunOut], response_model_exclude_unset=True,
            dependencies=[needs(Perm.SOP_READ)])
async def list_runs(state: State, user: User, page: Paging,
                    status: SopRunStatus | None = None,
                    sop: str | None = None, started_by: str | None = None) -> dict[str, Any]:
    rows, total = await _svc(state).records.runs(status=status, sop=sop, started_by=started_by, limit=page.limit,
                                                 offset=page.offset)
    return listing([run_dict(r) for r in rows], total)


@router.get("/sop-runs/{run_id}", response_model=SopRunDetailOut, response_model_exclude_unset=True,
            responses=NOT_FOUND, dependencies=[needs(Perm.SOP_READ)])
async def get_run(run_id: int, state: State, user: User) -> dict[str, Any]:
    """A run with each step (status, attempts, tasks, result, timings), its approvals and tickets."""
    svc = _svc(state)
    run = await svc.records.run(run_id)
    steps = await svc.records.steps(run_id)
    approvals, _ = await svc.step_approvals.list(run_id=run_id, limit=1000)
    tickets = await automation.of(state).tickets.list(run_id=run_id, limit=1000)
    return {**run_dict(run), "steps": [step_dict(s) for s in steps],
            "approvals": [step_approval_dict(a) for a in approvals], "tickets": tickets}


@router.get("/sop-runs/{run_id}/events", response_model=Page[RunEventOut], responses=NOT_FOUND,
            dependencies=[needs(Perm.SOP_READ)])
async def run_events(run_id: int, state: State, user: User, after: Annotated[int, Query(ge=0)] = 0,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any]:
    svc = _svc(state)
    await svc.records.run(run_id)
    events = await svc.records.events(run_id, after=after, limit=limit)
    return listing(events, len(events))


@router.post("/sop-runs/{run_id}/cancel", status_code=202, response_model=CancelOut,
             responses={**NOT_FOUND, **CONFLICT}, dependencies=[needs(Perm.SOP_RUN)])
async def cancel_run(run_id: int, state: State, user: User, request: Request) -> dict[str, Any]:
    return {"id": run_id, "result": await _svc(state).cancel(run_id, by=user.username,
                                                             client=client_address(request))}


@router.post("/sop-runs/{run_id}/steps/{step_id}/approve", response_model=ApprovalOut,
             responses={**NOT_FOUND, **CONFLICT}, dependencies=[needs(Perm.APPROVALS_DECIDE)])
async def approve_step(run_id: int, step_id: str, state: State, user: User, request: Request,
                       body: DecisionIn | None = None) -> StepApprovalDict:
    """Approve a waiting approval step (not the run's starter; only listed approvers if the step lists any)."""
    return await _svc(state).decide(run_id, step_id, by=user.username, approve=True,
                                    comment=body.comment if body else "", client=client_address(request))


@router.post("/sop-runs/{run_id}/steps/{step_id}/reject", response_model=ApprovalOut,
             responses={**NOT_FOUND, **CONFLICT}, dependencies=[needs(Perm.APPROVALS_DECIDE)])
async def reject_step(run_id: int, step_id: str, state: State, user: User, request: Request,
                      body: DecisionIn | None = None) -> StepApprovalDict:
    return await _svc(state).decide(run_id, step_id, by=user.username, approve=False,
                                    comment=body.comment if body else "", client=client_address(request))


@router.get("/sop-approvals", response_model=Page[ApprovalOut], dependencies=[needs(Perm.SOP_READ)])
async def list_approvals(state: State, user: User, page: Paging,
                         status: ApprovalStatus | None = None,
                         ) -> dict[str, Any]:
    rows, total = await _svc(state).step_approvals.list(status=status, limit=page.limit, offset=page.offset)
    return listing([step_approval_dict(a) for a in rows], total)


@router.get("/tickets", response_model=Page[TicketOut], dependencies=[needs(Perm.SOP_READ)])
async def list_tickets(state: State, user: User, page: Paging, run_id: int | None = None) -> dict[str, Any]:
    rows = await automation.of(state).tickets.list(run_id=run_id, limit=page.limit, offset=page.offset)
    return listing(rows, len(rows))


@router.websocket("/sop-runs/{run_id}/stream", dependencies=[needs(Perm.SOP_READ)])
async def stream(ws: WebSocket, run_id: int, after: int = 0) -> None:
    """A run's events from ``after`` on: the stored ones, then live ones, then ``{"type": "end", "run"}``.

    Messages: ``{"type": "events", "events": [...]}``; reconnecting with the last ``seq`` seen
    misses nothing and repeats nothing (runs in other processes are followed from the database).
    """
    state: Runtime = ws.app.state.smallyi
    if await accept_websocket(ws) is None:
        return
    svc = _svc(state)
    try:
        await svc.records.run(run_id)
    except SmallYiError as exc:
        await ws.close(code=4404, reason=exc.message[:120])
        return
    sub = state.bus.subscribe(f"sop-run:{run_id}")
    last = after
    live = True
    try:
        while True:
            events = await svc.records.events(run_id, after=last, limit=2000)
            if events:
                await ws.send_text(json.dumps({"type": "events", "events": events}))
                last = events[-1]["seq"]
                continue
            run = await svc.records.run(run_id)
            if run.status in FINAL_RUN and run.last_seq <= last:
                await ws.send_text(json.dumps({"type": "end", "run": run_dict(run)}, default=str))
                await ws.close()
                return
            if not live:  # the run's topic ended (or we fell behind): the database says the rest
                await asyncio.sleep(0.5)
                continue
            try:  # an event wakes us at once (the run's, from any process on a shared bus); else we poll
                await asyncio.wait_for(anext(sub), timeout=0.5)
            except TimeoutError:
                pass
            except StopAsyncIteration:
                live = False
    except WebSocketDisconnect:
        return
    finally:
        sub.close()
