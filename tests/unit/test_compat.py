"""The library adjustments in smallyi/compat.py still apply to the installed versions, and do what they claim:
an upgrade that leaves the tested range, or changes an internal they touch, fails here first."""

from __future__ import annotations

import logging

import asyncssh
import pytest
import typer

from smallyi import compat


@pytest.mark.parametrize("package", sorted(compat.TESTED))
def test_installed_versions_are_in_the_tested_range(package: str) -> None:
    """Outside the range the adjustments are left out: widen TESTED (and pyproject's cap) only after checking."""
    assert compat.tested(package), f"{package} is outside compat.TESTED; re-check smallyi/compat.py against it"


def test_asyncssh_formats_only_the_records_it_logs(caplog: pytest.LogCaptureFixture) -> None:
    """After the guard, a dropped record never formats its arguments; a logged one is logged as before."""
    assert compat.guard_asyncssh_logs()
    assert asyncssh.logging.SSHLogger._smallyi_guarded is True  # type: ignore[attr-defined]

    class Costly:
        formatted = 0

        def __str__(self) -> str:
            Costly.formatted += 1
            return "costly"

    logger = asyncssh.logging.logger.get_child("compat-test")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    logger.info("dropped %s", Costly())
    assert Costly.formatted == 0
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        logger.info("kept %s", Costly())
    assert Costly.formatted >= 1 and "kept costly" in caplog.text


def test_typer_internals_used_by_the_cli_are_there() -> None:
    """What the fast path and the help use: Click's pipe wrapper, Typer's abort message, an argument's type."""
    from typer import rich_utils
    from typer._click.utils import PacifyFlushWrapper

    assert callable(PacifyFlushWrapper) and callable(rich_utils.rich_abort_error)
    app = typer.Typer()

    @app.command()
    def show(name: str) -> None:
        """Show one."""

    command = typer.main.get_command(app)
    arg = next(p for p in command.params if p.name == "name")
    assert arg.display_type_rich(ctx=None) == "<str>"  # type: ignore[attr-defined]  (what is hidden)
    compat.hide_argument_type(arg)
    assert arg.display_type_rich(ctx=None) is None  # type: ignore[attr-defined]


def test_fastapi_routes_of_nested_routers_are_all_walked() -> None:
    """The permission check sees a route two routers deep, with its full path."""
    from fastapi import APIRouter, FastAPI

    inner, outer, app = APIRouter(prefix="/inner"), APIRouter(prefix="/outer"), FastAPI()

    @inner.get("/leaf")
    def leaf() -> dict[str, str]:
        return {}

    outer.include_router(inner)
    app.include_router(outer, prefix="/api")
    paths = {path for path, _ in compat.app_routes(app)}
    assert "/api/outer/inner/leaf" in paths
