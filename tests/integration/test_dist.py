"""The single-file executable (``make dist``) runs the original's three lines on a machine with no Python.

The executable is built by ``make dist`` (a no-op when ``dist/small-yi`` is newer than the sources; a
build takes minutes), or taken from ``$SMALLYI_DIST`` to check one built elsewhere. Every command runs
with an empty environment (``env -i``: ``PATH=/usr/bin:/bin``, a temporary ``HOME``, the current folder a
temporary one), so nothing of the build's venv or the test's Python can be reached.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smallyi.testing import Fleet
from support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.dist, pytest.mark.fleet]

REPO = Path(__file__).resolve().parents[2]
HOSTS = 3
#: the password typed at ``hashpwd``'s prompt and used to log in
PASSWORD = "fresh machine, two commands"


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dist/small-yi``, built (or found current) by ``make dist``; or ``$SMALLYI_DIST``."""
    given = os.environ.get("SMALLYI_DIST")
    if given:
        return Path(given).resolve()
    log = tmp_path_factory.mktemp("dist") / "make-dist.log"
    with log.open("wb") as fh:
        built = subprocess.run(["make", "dist"], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=1800)
    assert built.returncode == 0, f"make dist failed:\n{log.read_text(errors='replace')[-4000:]}"
    return REPO / "dist" / "small-yi"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty folder: the commands' HOME and current folder."""
    folder = tmp_path / "machine"
    folder.mkdir()
    return folder


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """What ``env -i`` leaves, plus a PATH without any venv and a HOME of its own."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def sy(binary: Path, home: Path, *args: str, env: dict[str, str] | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], cwd=home, env=env or clean_env(home), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def hashpwd_on_a_terminal(binary: Path, home: Path) -> str:
    """``small-yi hashpwd`` as a person runs it: the password typed twice at its prompts."""
    import pexpect  # type: ignore[import-untyped]

    child = pexpect.spawn(str(binary), ["hashpwd"], cwd=str(home), env=clean_env(home), encoding="utf-8",
                          timeout=60)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Again: ")
    child.sendline(PASSWORD)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    found = re.search(r"^\$2[ab]\$\d\d\$[./A-Za-z0-9]{53}$", child.before.strip().splitlines()[-1])
    assert found, child.before
    assert PASSWORD not in child.before  # the password is not echoed
    return found.group(0)


#: the folder the GitOps test's file is written to, on a fleet host (the fleet's sshd runs on this machine)
GITOPS_ROOT = Path("/tmp/small-yi-dist-gitops")


def git(*args: str, cwd: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_AUTHOR_NAME": "Ann Ops", "GIT_AUTHOR_EMAIL": "ann@example.com",
           "GIT_COMMITTER_NAME": "Ann Ops", "GIT_COMMITTER_EMAIL": "ann@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def gitops_repo(home: Path, fleet: Fleet) -> Path:
    """A bare repository whose sync.yaml renders one template onto a fleet host not imported by hand."""
    bare, work = home / "origin.git", home / "work"
    git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=home)
    git("init", "-q", "--initial-branch=main", str(work), cwd=home)
    name, address = fleet.hosts[HOSTS]
    (work / "hosts").mkdir()
    (work / "templates").mkdir()
    (work / "hosts/h.yaml").write_text(f"group: g\nvars: {{v: 1}}\nhosts:\n  - name: {name}\n"
                                       f"    address: {address}\n    port: {fleet.port}\n    user: {fleet.user}\n")
    (work / "templates/t.tmpl").write_text("v={{ .v }} on {{ .host.name }}\n")  # Go syntax, as the original
    (work / "sync.yaml").write_text(f"files:\n  - template: t.tmpl\n    path: {GITOPS_ROOT}/{home.name}.conf\n"
                                    "    target: {group: g}\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "v1", cwd=work)
    git("push", "-q", str(bare), "HEAD:main", cwd=work)
    return bare


@pytest.fixture
def served(binary: Path, home: Path, ssh_fleet: Fleet) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``small-yi serve --config config.yaml`` of the executable, with a config holding ``hashpwd``'s hash
    and the fleet's first hosts imported into group-prod; yields its URL and process."""
    password_hash = hashpwd_on_a_terminal(binary, home)
    port = free_port()
    (home / "config.yaml").write_text(
        f'server:\n  listen: "127.0.0.1:{port}"\n'
        "database:\n  driver: sqlite3\n  source: ./data/small-yi.db\n"
        f'auth:\n  users:\n    - username: admin\n      password_hash: "{password_hash}"\n'
        + ssh_fleet.ssh_yaml()
        + f"gitops:\n  repo: {gitops_repo(home, ssh_fleet)}\n  branch: main\n"
    )
    inventory = ["group: group-prod", "hosts:"]
    for name, address in ssh_fleet.hosts[:HOSTS]:
        inventory += [f"  - name: {name}", f"    address: {address}", f"    port: {ssh_fleet.port}"]
    (home / "inventory.yaml").write_text("\n".join(inventory) + "\n")
    imported = sy(binary, home, "hosts", "import", "inventory.yaml", "--config", "config.yaml")
    assert imported.returncode == 0, imported.stdout + imported.stderr

    log = home / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(binary), "serve", "--config", "config.yaml"], cwd=home, env=clean_env(home),
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /healthz within 90 s:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def loaded_files(pid: int) -> set[str]:
    """Every file mapped by ``pid`` and its children (the onefile bootloader runs Python in a child)."""
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    files: set[str] = set()
    for p in pids:
        for line in Path(f"/proc/{p}/maps").read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                files.add(parts[5])
    return files


def assert_uptime_lines(output: str) -> None:
    """One ``[host-00N] ... load average`` line per fleet host."""
    for n in range(1, HOSTS + 1):
        assert re.search(rf"^\[host-00{n}\] .*load average", output, re.M), output


def test_the_three_lines_with_the_executable(binary: Path, home: Path,
                                             served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """hashpwd, serve (console page, xterm.js, API docs, login) and run --group on the fleet, with no Python."""
    url, proc = served
    page = httpx.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and "static/js/main.js" in page.text
    xterm = httpx.get(f"{url}/static/vendor/xterm/xterm.mjs", timeout=10)
    assert xterm.status_code == 200 and "Terminal" in xterm.text
    docs = httpx.get(f"{url}/api/docs", timeout=10)  # Swagger UI, served from the bundle
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert httpx.get(f"{url}/static/vendor/swagger-ui/swagger-ui-bundle.js", timeout=10).status_code == 200
    login = httpx.post(f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    token = login.json()["token"]

    # nothing the server runs on comes from this checkout or a venv: only the bundle and the system
    mapped = loaded_files(proc.pid)
    assert any("libpython" in f for f in mapped), sorted(mapped)
    assert not [f for f in mapped if f.startswith(str(REPO)) and not f.startswith(str(REPO / "dist"))]
    assert not [f for f in mapped if "site-packages" in f and "/_MEI" not in f]

    # the original's third line, in-process, archiving into the server's database
    ran = sy(binary, home, "run", "--group", "group-prod", "--cmd", "uptime", "--timeout", "10s",
             "--config", "config.yaml")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_uptime_lines(ran.stdout)
    assert f"success {HOSTS}" in ran.stdout

    # ... and through the server's API, its output streamed back over a WebSocket
    remote = sy(binary, home, "run", "--group", "group-prod", "--cmd", "uptime", "--timeout", "10s",
                env=clean_env(home, SMALLYI_SERVER=url, SMALLYI_TOKEN=token))
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert_uptime_lines(remote.stdout)

    tasks = httpx.get(f"{url}/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert tasks.status_code == 200
    assert [t["command"] for t in tasks.json()["items"]][:2] == ["uptime", "uptime"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM  # as from a venv: the launcher dies of the signal the server did


def test_version_and_help_need_no_config(binary: Path, home: Path) -> None:
    """``--version`` prints the package's version; ``--help`` lists every command group."""
    from smallyi import __version__

    version = sy(binary, home, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, __version__)
    shown = sy(binary, home, "--help")
    assert shown.returncode == 0
    for command in ("serve", "hashpwd", "run", "hosts", "tasks", "sop", "sync", "db"):
        assert command in shown.stdout


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def test_gitops_renders_in_the_executables_own_rendering_process(
        binary: Path, home: Path, served: tuple[str, subprocess.Popen[bytes]], ssh_fleet: Fleet) -> None:
    """The server starts its rendering process as ``small-yi -m smallyi.gitops.worker``; a SIGKILL to that
    process's launcher ends its Python too; ``sync plan`` and ``sync apply`` render and write a file."""
    _url, proc = served
    (server,) = children(proc.pid)  # the launcher's Python
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while not workers:
        assert time.monotonic() < deadline, "no rendering process started by the server"
        workers = [c for c in children(server) if "smallyi.gitops.worker" in cmdline(c)]
        time.sleep(0.2)
    (launcher,) = workers
    assert cmdline(launcher).startswith(f"{binary} -m smallyi.gitops.worker ")
    deadline = time.monotonic() + 60
    while not children(launcher):
        assert time.monotonic() < deadline, "the rendering process's launcher started no Python"
        time.sleep(0.2)
    (python,) = children(launcher)
    os.kill(launcher, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{python}").exists() and Path(f"/proc/{python}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the rendering process's Python outlived its launcher"
        time.sleep(0.1)

    GITOPS_ROOT.mkdir(exist_ok=True)
    GITOPS_ROOT.chmod(0o777)
    target = GITOPS_ROOT / f"{home.name}.conf"
    name = ssh_fleet.hosts[HOSTS][0]
    try:
        plan = sy(binary, home, "sync", "plan", "--output", "json", "--config", "config.yaml")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert json.loads(plan.stdout)["counts"]["files"] == {"changed": 1} and not target.exists()
        applied = sy(binary, home, "sync", "apply", "--config", "config.yaml")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert f"[{name}] changed {target}" in applied.stdout
        assert target.read_text() == f"v=1 on {name}\n"
    finally:
        target.unlink(missing_ok=True)
