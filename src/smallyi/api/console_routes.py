"""The routers the web console added: the terminal, per-user preferences and the dashboard overview."""

from __future__ import annotations

from fastapi import APIRouter

from smallyi.api import overview, preferences, terminal

router = APIRouter()
router.include_router(terminal.router)
router.include_router(preferences.router)
router.include_router(overview.router)
