"""Fixtures shared by every test: a config in a temp folder, a running server, a PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import Fleet, Server, ensure_fleet, start_server, write_config

PG = "postgresql://postgres@127.0.0.1:5432"


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
    """A fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    name = f"smallyi_test_{uuid.uuid4().hex[:10]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, capture_output=True)
    yield f"{PG}/{name}"
    subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def ssh_fleet() -> Fleet:
    """The OpenSSH fleet (20 hosts unless SMALLYI_FLEET_N says more), reused when already up."""
    import os

    return ensure_fleet(int(os.environ.get("SMALLYI_FLEET_N", "20")))
