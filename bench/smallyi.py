"""A small-yi workspace for the benchmark: config, database, hosts and groups, a server and its token.

Everything goes through small-yi's own CLI and API, as a user would do it:
``small-yi hosts import FLEET/inventory.yaml``, ``small-yi serve``, ``POST /api/v1/auth/tokens``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx

from smallyi.testing import Fleet

SMALL_YI = str(Path(sys.executable).with_name("small-yi"))
PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, cwd: Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([SMALL_YI, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"small-yi {' '.join(args[:4])} ... failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    token: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Workspace:
    """One folder with config.yaml and its SQLite database (or a PostgreSQL URL)."""

    dir: Path
    fleet: Fleet | None = None
    database: str = ""
    groups: dict[int, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    def write_config(self, *, max_concurrency: int = 1000) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pw_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        db = self.database or "database:\n  driver: sqlite3\n  source: ./data/small-yi.db\n"
        ssh = ""
        if self.fleet is not None:
            ssh = (f"ssh:\n  user: {self.fleet.user}\n  private_key: {self.fleet.key}\n  known_hosts: {self.fleet.known_hosts}\n"
                   "  connect_timeout: 60s\n")
        self.config.write_text(
            db + f"auth:\n  users:\n    - username: admin\n      password_hash: \"{pw_hash}\"\n" + ssh
            + f"execution:\n  max_concurrency: {max_concurrency}\n  default_concurrency: {max_concurrency}\n"
        )

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--config", str(self.config), cwd=self.dir, check=check, timeout=timeout)

    def import_hosts(self) -> None:
        """``small-yi hosts import FLEET/inventory.yaml``: every fleet host, in group ``fleet``."""
        assert self.fleet is not None
        self.run("hosts", "import", str(self.fleet.directory / "inventory.yaml"))

    def group(self, n: int) -> str:
        """A group holding the first ``n`` fleet hosts (made once)."""
        assert self.fleet is not None
        if n not in self.groups:
            name = f"bench-{n}"
            self.run("hosts", "groups", "create", name, check=False)
            self.run("hosts", "groups", "add", name, *[h for h, _ in self.fleet.hosts[:n]])
            self.groups[n] = name
        return self.groups[n]

    def serve(self, *, port: int | None = None, timeout: float = 60) -> Server:
        """``small-yi serve`` on a free port, logged in, with an API token made through the API."""
        port = port or free_port()
        log = self.dir / f"server-{port}.log"
        proc = subprocess.Popen(
            [SMALL_YI, "serve", "--config", str(self.config), "--listen", f"127.0.0.1:{port}",
             "--log-level", "warning"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.dir, env=os.environ.copy(),
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not answer in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        srv = Server(url, proc, log)
        r = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30)
        r.raise_for_status()
        session = r.json()["token"]
        r = httpx.post(f"{url}/api/v1/auth/tokens", json={"name": f"bench-{port}"},
                       headers={"Authorization": f"Bearer {session}"}, timeout=30)
        r.raise_for_status()
        srv.token = r.json()["token"]
        return srv
