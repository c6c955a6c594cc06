"""Administration of the running server: reloading its config file (``config.reload``, admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from smallyi import reloader
from smallyi.api.deps import State, User, client_address
from smallyi.api.permissions import Perm, needs
from smallyi.api.schemas.admin import ReloadOut
from smallyi.errors import ConfigError, Conflict

router = APIRouter(prefix="/admin", tags=["admin"])


#: exclude_unset: a change that applies at once has no "restart" key (not a null one)
@router.post("/reload", response_model=ReloadOut, response_model_exclude_unset=True,
             dependencies=[needs(Perm.CONFIG_RELOAD)])
async def reload_config(user: User, state: State, request: Request) -> dict[str, Any]:
    """Reload the config file the server was started with, as SIGHUP does: answers what changed, what was
    applied and what needs a restart. A file that is not valid changes nothing and answers 422 naming the
    problem. Audited as ``config.reload``."""
    found = reloader.of(state)
    if found is None:
        raise Conflict("this server was not started from a config file by `small-yi serve`: nothing to reload")
    report = await found.reload(by=user.username, via="api", client=client_address(request))
    if report.status == "refused":
        raise ConfigError(report.message())
    return report.to_dict()
