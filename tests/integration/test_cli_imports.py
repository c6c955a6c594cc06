"""`small-yi run` loads only what a run needs (docs/architecture.md): every module is CPU a cold run pays.

Not a timing test: it lists the modules a real run process ended with and checks the design rule.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import cli, write_config

SCRIPT = """
import atexit, json, sys
out = sys.argv[1]
sys.argv = ["small-yi", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from smallyi.cli.main import main
main()
"""


def _modules(folder: Path, *args: str) -> set[str]:
    out = folder / "modules.json"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(out), *args], cwd=folder, capture_output=True, text=True,
                       timeout=120, check=False)
    assert out.exists(), r.stderr
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_an_in_process_run_loads_no_server_gitops_sop_or_migration_code(tmp_path: Path) -> None:
    """A local run (schema current) imports no FastAPI/uvicorn, Alembic, Jinja2/GitOps, SOPs, terminals,
    log follows, preferences, HTTP client, nor Typer's pydantic adapters (the fast path parses its options)."""
    config = write_config(tmp_path)
    assert cli("db", "upgrade", config=config).returncode == 0  # as on every run but a database's first
    modules = _modules(tmp_path, "run", "--hosts", "local", "--cmd", "true", "--config", str(config))
    assert "smallyi.runtime" in modules and "smallyi.tasks.summary" in modules  # it ran
    for package in ("fastapi", "starlette", "uvicorn", "alembic", "jinja2", "smallyi.app", "smallyi.api",
                    "smallyi.web", "smallyi.gitops", "smallyi.sop", "smallyi.terminal", "smallyi.logs",
                    "smallyi.users", "smallyi.execution.connectors.pty", "typer._adapters", "httpx", "websockets"):
        assert not _loaded(modules, package), package


def test_a_run_with_server_loads_no_database_ssh_or_config_code(tmp_path: Path) -> None:
    """`run --server` is an HTTP client: no SQLAlchemy, asyncssh, pydantic, YAML config or runtime."""
    modules = _modules(tmp_path, "run", "--hosts", "a", "--cmd", "true", "--server", "http://127.0.0.1:9",
                       "--token", "t")
    assert "smallyi.cli.client" in modules
    for package in ("sqlalchemy", "asyncssh", "pydantic", "yaml", "smallyi.storage", "smallyi.config",
                    "smallyi.runtime", "fastapi", "typer._adapters"):
        assert not _loaded(modules, package), package
