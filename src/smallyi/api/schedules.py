"""Schedules: cron schedules of commands and SOPs, their fires (one per slot), pause and resume."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from smallyi.api.deps import Paging, State, User, listing
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas import ErrorOut, Page
from smallyi.api.schemas.schedules import FireOut, ScheduleListedOut, ScheduleOut
from smallyi.api.targets import TargetIn
from smallyi.auth.service import Principal
from smallyi.durations import parse_timeout
from smallyi.errors import InputError
from smallyi.inventory.selectors import Selector
from smallyi.runtime import Runtime
from smallyi.schedules.store import fire_dict, next_slot, schedule_dict
from smallyi.sop import automation

router = APIRouter(tags=["schedules"])
#: the refusals these routes add to the common ones
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "no such schedule"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorOut, "description": "a schedule of that name exists"}}
# response_model_exclude_unset: a target and a notify name only the parts given; keys left out stay out


class NotifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: list[str] = Field(default_factory=list, max_length=50)
    on: tuple[Literal["success", "failure", "finish"], ...] = ("failure",)
    message: str | None = Field(default=None, max_length=8000)


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=2000)
    #: "*/5 * * * *", "@every 10m", "@daily"
    cron: str = Field(min_length=1, max_length=128)
    timezone: str | None = Field(default=None, max_length=64)
    kind: Literal["command", "sop"]
    command: str = Field(default="", max_length=64 * 1024)
    target: TargetIn | None = None
    #: Go duration or seconds
    timeout: str | float | None = None
    sop_name: str = Field(default="", max_length=128)
    vars: dict[str, Any] = Field(default_factory=dict)
    environment: str = Field(default="", max_length=64)
    missed: Literal["skip", "run_once"] = "skip"
    overlap: Literal["skip", "allow"] = "skip"
    enabled: bool = True
    notify: NotifyIn | None = None


class ScheduleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=2000)
    cron: str | None = Field(default=None, max_length=128)
    timezone: str | None = Field(default=None, max_length=64)
    command: str | None = Field(default=None, max_length=64 * 1024)
    target: TargetIn | None = None
    timeout: str | float | None = None
    sop_name: str | None = Field(default=None, max_length=128)
    vars: dict[str, Any] | None = None
    environment: str | None = Field(default=None, max_length=64)
    missed: Literal["skip", "run_once"] | None = None
    overlap: Literal["skip", "allow"] | None = None
    enabled: bool | None = None
    notify: NotifyIn | None = None
    #: take the schedule over: your own user name; it then runs with your rights (checked now and at each slot)
    owner: str | None = Field(default=None, max_length=128)


def _values(body: BaseModel, state: Runtime) -> dict[str, Any]:
    v = body.model_dump(exclude_unset=True)
    if v.get("target") is not None:
        v["target"] = {k: x for k, x in v["target"].items() if x}
    if "timeout" in v:
        v["timeout"] = None if v["timeout"] is None else parse_timeout(v["timeout"], field="timeout")
    if isinstance(body, ScheduleIn) and not body.timezone:
        v["timezone"] = state.settings.schedules.timezone
    return v


async def _check_rights(state: Runtime, user: Principal, values: dict[str, Any]) -> None:
    """The creator must be allowed to do, now, what the schedule will do in their name later."""
    if values.get("kind") == "sop" or values.get("sop_name"):
        user.access.check(Perm.SOP_RUN)
        if values.get("sop_name"):  # (a missing name is the store's to refuse, naming the field)
            svc = automation.of(state).sop
            stored = await svc.store.get(values["sop_name"])
            if "vars" in values:  # each value fits its declared type now (and again at every fire)
                from smallyi.sop.validate import load_sop

                svc.variables(load_sop(stored.source, source=stored.name)[0], values["vars"] or {})
    t = values.get("target") or {}
    if t:
        sel = Selector.from_dict(t)
        hosts = await state.inventory.resolve(sel)
        perm = Perm.TASKS_RUN if values.get("kind", "command") == "command" else Perm.SOP_RUN
        user.access.check_hosts(perm, [(h.name, h.permission_groups) for h in hosts])


async def _out(state: Runtime, row: Any) -> dict[str, Any]:
    owner = await state.auth.accounts.standing(row.created_by)
    return schedule_dict(row, next_slot=next_slot(row), suspended=None if owner.ok else owner.problem("owner"))


@router.get("/schedules", dependencies=[needs(Perm.SCHEDULES_READ)], response_model=Page[ScheduleListedOut],
            response_model_exclude_unset=True)
async def list_schedules(state: State, user: User) -> dict[str, Any]:
    """Every schedule with its next slot, its latest fire (``last_fire``, or null before the first) and,
    when its owner cannot act now, why (``suspended``)."""
    store = automation.of(state).schedules
    rows = await store.all()
    items = []
    for r in rows:
        fires, _ = await store.fires(r.id, limit=1)
        items.append({**await _out(state, r), "last_fire": fire_dict(fires[0]) if fires else None})
    return listing(items, len(items))


@router.post("/schedules", status_code=201, dependencies=[needs(Perm.SCHEDULES_WRITE)], response_model=ScheduleOut,
             response_model_exclude_unset=True, responses=CONFLICT)
async def create_schedule(body: ScheduleIn, state: State, user: User) -> dict[str, Any]:
    """Create a schedule; it first fires at its next slot after now."""
    values = _values(body, state)
    await _check_rights(state, user, values)
    auto = automation.of(state)
    row = await auto.schedules.create(values, by=user.username, role=user.role, groups=user.access.groups)
    auto.scheduler.wake()
    return await _out(state, row)


@router.get("/schedules/{name}", dependencies=[needs(Perm.SCHEDULES_READ)], response_model=ScheduleOut,
            response_model_exclude_unset=True, responses=NOT_FOUND)
async def get_schedule(name: str, state: State, user: User) -> dict[str, Any]:
    return await _out(state, await automation.of(state).schedules.get(name))


@router.patch("/schedules/{name}", dependencies=[needs(Perm.SCHEDULES_WRITE)], response_model=ScheduleOut,
              response_model_exclude_unset=True, responses=NOT_FOUND)
async def change_schedule(name: str, body: ScheduleChange, state: State, user: User) -> dict[str, Any]:
    """Change fields (``{"enabled": false}`` pauses it); an edit counts missed runs from now.
    ``{"owner": "<you>"}`` takes it over: it then runs with your rights, checked now against all it does."""
    auto = automation.of(state)
    current = await auto.schedules.get(name)
    values = _values(body, state)
    owner = values.pop("owner", None)
    if not values and owner is None:
        raise InputError("give at least one field to change", field="body")
    if owner is not None and owner != user.username:
        raise InputError(f"owner: you can take a schedule over only for yourself (owner: {user.username!r}); "
                         f"{owner!r} can do it with their own login", field="owner")
    whole = {"target": current.target} if owner is not None else {}
    await _check_rights(state, user, {"kind": current.kind, "sop_name": current.sop_name, **whole, **values})
    row = await auto.schedules.update(name, values, by=user.username,
                                      owner=(user.username, user.role, user.access.groups) if owner else None)
    if owner is not None and current.created_by != user.username:
        await state.audit.record("schedule.owner", actor=user.username, target=f"schedule {name}",
                                 perm=Perm.SCHEDULES_WRITE.value, source="api",
                                 detail={"from": current.created_by, "to": user.username})
    auto.scheduler.wake()
    return await _out(state, row)


@router.delete("/schedules/{name}", status_code=204, dependencies=[needs(Perm.SCHEDULES_WRITE)], responses=NOT_FOUND)
async def delete_schedule(name: str, state: State, user: User) -> Response:
    await automation.of(state).schedules.delete(name)
    return Response(status_code=204)


@router.get("/schedules/{name}/fires", dependencies=[needs(Perm.SCHEDULES_READ)], response_model=Page[FireOut],
            responses=NOT_FOUND)
async def schedule_fires(name: str, state: State, user: User, page: Paging) -> dict[str, Any]:
    """Each slot handled: fired (with its task or SOP run), skipped for overlap, or missed."""
    auto = automation.of(state)
    row = await auto.schedules.get(name)
    fires, total = await auto.schedules.fires(row.id, limit=page.limit, offset=page.offset)
    return listing([fire_dict(f) for f in fires], total)
