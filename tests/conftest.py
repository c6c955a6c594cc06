"""Fixtures shared by every test: a config in a temp folder, a running server, a PostgreSQL database, the
OpenSSH fleet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# before smallyi is imported, and inherited by every server the tests start: an answer with a key its
# response model does not declare is a 500 (smallyi.api.schemas)
os.environ.setdefault("SMALLYI_STRICT_ANSWERS", "1")

from smallyi.testing import Fleet
from smallyi.testing import fleet as fleet_mod
from support import RedisSpace, Server, missing, start_server, write_config

#: a PostgreSQL server where the tests may create and drop databases (scripts/test starts a private one
#: when none answers here without a password)
PG = os.environ.get("SMALLYI_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
#: a Redis server where the tests may write keys, each test under a prefix of its own (scripts/test starts a
#: private one when none answers on 127.0.0.1:6379)
REDIS = os.environ.get("SMALLYI_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: what this machine lacks for the fleet tests: reason → the tests left out for it
_LEFT_OUT = pytest.StashKey[dict[str, int]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without sshd (or, without root, without terminals), leave the tests that need it out and say so
    in one line at the end. In CI they stay in, and their fixture fails them (CI installs everything)."""
    if os.environ.get("CI"):
        return
    checks = [("sshd_available", "OpenSSH fleet tests", fleet_mod.problem),
              ("fleet_terminals", "terminal tests on the OpenSSH fleet", fleet_mod.pty_problem)]
    left_out: dict[str, int] = {}
    for fixture, what, check in checks:
        needing = [item for item in items if fixture in getattr(item, "fixturenames", ())]
        why = check() if needing else None
        if why:
            left_out[f"{what}: {why}"] = len(needing)
            gone = set(needing)
            items[:] = [item for item in items if item not in gone]
            config.hook.pytest_deselected(items=needing)
    config.stash[_LEFT_OUT] = left_out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for reason, count in config.stash.get(_LEFT_OUT, {}).items():
        terminalreporter.write_line(f"SKIPPED {count} {reason}", yellow=True, bold=True)


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


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    """The test Redis ($SMALLYI_TEST_REDIS) with a fresh key prefix; the keys under it are removed afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2, socket_timeout=10)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        missing(f"Redis tests skipped: no Redis answers at {REDIS} ({exc}); scripts/test starts one "
                "(apt-get install -y redis-server), or set SMALLYI_TEST_REDIS")
    prefix = f"small-yi-test-{uuid.uuid4().hex[:10]}:"
    try:
        yield RedisSpace(REDIS, prefix)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def sshd_available() -> None:
    """Skip (fail in CI) every OpenSSH fleet test at once, with one line saying why, when sshd is missing."""
    why = fleet_mod.problem()
    if why:
        missing(f"OpenSSH fleet tests skipped: {why}")


@pytest.fixture(scope="session")
def fleet(sshd_available: None) -> Iterator[Fleet]:
    """The OpenSSH fleet of this test session: one sshd on a free port, ``$SMALLYI_FLEET_N`` hosts (20),
    fresh keys in a fresh folder, stopped at the end.

    ``SMALLYI_FLEET_DIR=DIR`` (for speed while developing): a fleet running there (``python -m
    smallyi.testing fleet up 20 DIR``) is reused and left running; none running, one is started there.
    """
    n = int(os.environ.get("SMALLYI_FLEET_N", "20"))
    reuse = os.environ.get("SMALLYI_FLEET_DIR")
    if reuse and os.environ.get("PYTEST_XDIST_WORKER"):  # each test process (pytest -n) keeps its own fleet
        reuse = str(Path(reuse) / os.environ["PYTEST_XDIST_WORKER"])
    if reuse:
        try:
            running: Fleet | None = Fleet.load(reuse)
        except fleet_mod.FleetError:
            running = None
        if running is not None and running.running():
            running.grow(n)
            yield running
            return
    folder = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="small-yi-fleet-"))
    fl = Fleet.start(n, folder)
    try:
        yield fl
    finally:
        fl.stop()
        if not reuse:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_fleet(fleet: Fleet) -> Fleet:
    """The same fleet, by the name the server-level tests use."""
    return fleet


@pytest.fixture(scope="session")
def fleet_terminals(fleet: Fleet) -> Fleet:
    """The same fleet, for tests that open a terminal on it: skipped at once, with the reason, where a
    fleet started without root cannot hand out terminals (see ``smallyi.testing.fleet.pty_problem``)."""
    why = fleet_mod.pty_problem()
    if why:
        missing(f"terminal tests on the OpenSSH fleet skipped: {why}")
    return fleet
