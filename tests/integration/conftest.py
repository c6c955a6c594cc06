"""Engine integration fixtures: hostile asyncssh hosts. The real OpenSSH fleet (``fleet``) is the
session-wide one of tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smallyi.testing import HostileFleet


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[HostileFleet]:
    """A set of hostile hosts on 127.0.0.1 (start them with ``await hostile.start(Behaviour.X)``)."""
    async with HostileFleet(tmp_path / "hostile") as hf:
        yield hf
