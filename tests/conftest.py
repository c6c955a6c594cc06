"""Fixtures shared by every test: a config in a temp folder, a running server, a PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import Fleet, Server, ensure_fleet, missing, start_server, write_config

#: a PostgreSQL server where the tests may create and drop databases (scripts/test starts a private one
#: when none answers here without a password)
PG = os.environ.get("SMALLYI_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def server(config_file: Path) -> Iterator[Server]:
    """A real ``small-yi serve`` on a free port with the embedded SQLite database."""
    srv = start_server(config_file)
    yield srv
    srv.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server ($SMALLYI_TEST_PG), dropped afterwards."""
    name = f"smallyi_test_{uuid.uuid4().hex[:10]}"
    psql = ["psql", f"{PG}/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    try:
        made = subprocess.run([*psql, f"CREATE DATABASE {name}"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        missing("psql not found: the PostgreSQL tests need a server (scripts/test starts one as root)")
    if made.returncode != 0:
        missing(f"PostgreSQL at {PG} refused CREATE DATABASE: {made.stderr.strip()}; "
                "set SMALLYI_TEST_PG to a server where the tests may create databases")
    yield f"{PG}/{name}"
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def ssh_fleet() -> Fleet:
    """The OpenSSH fleet (20 hosts unless SMALLYI_FLEET_N says more), reused when already up."""
    import os

    return ensure_fleet(int(os.environ.get("SMALLYI_FLEET_N", "20")))
