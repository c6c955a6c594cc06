"""GitOps repositories that are not a local path, against real servers on loopback: a file:// URL, the
OpenSSH fleet's sshd (git-upload-pack of this machine's git), ``git http-backend`` over HTTPS with Basic
auth and a CA made here, and a server that accepts and never answers (the time limit).

What they prove is what docs/gitops.md "Remote repositories" says: a token in an https URL never
reaches a command line or a message, each failure names the setting to check, and a hung fetch is
stopped with everything it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from test_gitops_service import TEMPLATE, Repo, files_of, hosts_yaml, manifest, statuses

from git_http import GitHTTPSServer, http_backend, which_git
from smallyi.config import parse_settings, redact_url
from smallyi.errors import RepoError
from smallyi.execution.connectors.local import LocalConnector
from smallyi.gitops import repo as repo_module
from smallyi.gitops.repo import GitRepo, split_credentials
from smallyi.runtime import Runtime
from smallyi.testing import Fleet
from support import cli, missing, write_config

USER = "ann"
#: distinctive, so finding it anywhere (argv, a message, a file) cannot be a coincidence
TOKEN = f"tok-{uuid.uuid4().hex}"
FILES = {"hosts/web.yaml": "group: web\nhosts: []\n", "templates/app.conf.j2": "x\n", "sync.yaml": "files: []\n"}
SSH_HINT = "check the ssh key and known_hosts file git's ssh uses (GIT_SSH_COMMAND"
CERT_HINT = "check that the server's certificate is signed by a CA the server trusts"


@pytest.fixture(autouse=True)
def clean_git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings under test come from the server's environment: start each test without them."""
    for name in repo_module.PASSED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "hosts-root"
    r.mkdir()
    return r


@pytest.fixture
def https(tmp_path: Path, repo: Repo) -> Iterator[GitHTTPSServer]:
    """``git http-backend`` over HTTPS for ``repo`` (``/origin.git``), user ann with TOKEN."""
    if http_backend() is None:
        missing("git http-backend is not installed (Debian's git package has it)")
    with GitHTTPSServer(repo.bare.parent, USER, TOKEN, tmp_path / "certs") as srv:
        yield srv


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first in PATH that appends its argv to a log, and has the real git trace every command
    it runs (git-remote-https, credential helpers) to the same log: every argv GitRepo causes."""
    bin_dir, log = tmp_path / "shim", tmp_path / "git-argv.log"
    bin_dir.mkdir()
    shim = bin_dir / "git"
    shim.write_text(f'#!/bin/sh\nprintf "argv: %s\\n" "$*" >>"{log}"\nGIT_TRACE="{log}" exec "{which_git()}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def processes_with(needle: str) -> list[str]:
    """Command lines (from /proc) that contain ``needle``, other than this test's own process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if needle.encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


# -- file:// -------------------------------------------------------------------------------------


async def test_file_url_fetches_head_and_files(tmp_path: Path, repo: Repo) -> None:
    """A file:// URL: fetched into the mirror (head, files, author read from it), brought up to date by the
    next fetch; a branch it lacks is a RepoError naming gitops.branch."""
    sha = repo.commit(FILES, "first")
    git_repo = GitRepo(f"file://{repo.bare}", "main", tmp_path / "wd")
    assert await git_repo.fetch() == sha and await git_repo.head() == sha
    snapshot = await git_repo.snapshot(sha)
    assert snapshot.files["hosts/web.yaml"] == b"group: web\nhosts: []\n"
    assert (await git_repo.commit(sha)).author == "Ann Ops"
    sha2 = repo.commit({"templates/app.conf.j2": "y\n"}, "second")
    assert await git_repo.fetch() == sha2  # an existing mirror is brought up to date
    with pytest.raises(RepoError, match="couldn't find remote ref refs/heads/nope; check gitops.repo and gitops.branch"):
        await GitRepo(f"file://{repo.bare}", "nope", tmp_path / "wd2").fetch()


# -- messages, without a server ------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("https://ann:secret@git.example.com/ops.git", "https://ann:***@git.example.com/ops.git"),
    ("https://:secret@git.example.com/ops.git", "https://:***@git.example.com/ops.git"),
    ("https://ann:se@cret@git.example.com:8443/ops.git", "https://ann:***@git.example.com:8443/ops.git"),
    ("ssh://git:secret@git.example.com/ops.git", "ssh://git:***@git.example.com/ops.git"),
    ("git@git.example.com:ops/config.git", "git@git.example.com:ops/config.git"),
    ("https://git.example.com:8443/ops.git", "https://git.example.com:8443/ops.git"),
])
def test_redact_hides_every_password_form(url: str, shown: str) -> None:
    """Messages show the URL with its password as ***, however it is written (git reads up to the last @)."""
    assert redact_url(url) == shown
    assert redact_url(f"fetching {url}: failed") == f"fetching {shown}: failed"  # inside a message too


def test_credentials_leave_the_url_for_the_environment() -> None:
    """git gets the https URL without user and password; a line break in them is refused, not passed on."""
    fetch_url, env = split_credentials("https://ann:p%40ss@git.example.com:8443/ops.git")
    assert fetch_url == "https://git.example.com:8443/ops.git"
    assert env["SMALLYI_GIT_USER"] == "ann" and env["SMALLYI_GIT_PASSWORD"] == "p@ss"
    assert env["GIT_CONFIG_KEY_1"] == "credential.https://git.example.com:8443.helper"
    assert split_credentials("ssh://git@git.example.com/ops.git") == ("ssh://git@git.example.com/ops.git", {})
    with pytest.raises(RepoError, match="line break") as exc:
        split_credentials("https://ann:abc%0Aprotocol=file@git.example.com/ops.git")
    assert "abc" not in exc.value.message


# -- https ---------------------------------------------------------------------------------------


async def test_https_token_goes_through_the_helper_never_argv(tmp_path: Path, repo: Repo, https: GitHTTPSServer,
                                                              git_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """user:token in the URL authenticates (the server checks them) with GIT_SSL_CAINFO trusting the test CA;
    the token is in no git argv (git's own trace included), and a credential.helper=store in the server
    user's git config is overridden for that host, so the token is not written to ~/.git-credentials."""
    sha = repo.commit(FILES, "first")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_SSL_CAINFO", str(https.ca))
    git_repo = GitRepo(https.url("origin.git"), "main", tmp_path / "wd")
    assert await git_repo.fetch() == sha
    assert (await git_repo.snapshot(sha)).files["templates/app.conf.j2"] == b"x\n"
    assert any(r.authorized and r.user == USER and r.path.endswith("git-upload-pack") for r in https.requests)
    logged = git_log.read_text()
    assert TOKEN not in logged
    assert f"-- https://127.0.0.1:{https.port}/origin.git +refs/heads/main" in logged  # the log has the fetch
    assert "run_command: git-remote-https" in logged  # ... and what git ran for it
    assert not (home / ".git-credentials").exists()


async def test_https_wrong_token_names_the_setting_not_the_token(tmp_path: Path, repo: Repo,
                                                                 https: GitHTTPSServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused token: RepoError saying to check the user and token; neither token is in the message."""
    repo.commit(FILES, "first")
    monkeypatch.setenv("GIT_SSL_CAINFO", str(https.ca))
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(RepoError, match="check the user and token in gitops.repo") as exc:
        await GitRepo(https.url("origin.git", token=wrong), "main", tmp_path / "wd").fetch()
    message = exc.value.message
    assert "Authentication failed" in message and f"https://{USER}:***@127.0.0.1:{https.port}/origin.git" in message
    assert wrong not in message and TOKEN not in message
    assert any(r.user == USER and not r.authorized for r in https.requests)  # it was the server that refused
    with pytest.raises(RepoError, match="check the user and token in gitops.repo"):  # no credentials at all
        await GitRepo(https.url("origin.git", user="", token=""), "main", tmp_path / "wd2").fetch()


async def test_https_without_the_ca_names_git_ssl_cainfo(tmp_path: Path, repo: Repo, https: GitHTTPSServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate from a CA the server does not trust (no GIT_SSL_CAINFO): the certificate hint, no token;
    a host name the certificate does not name gets the same hint."""
    repo.commit(FILES, "first")
    with pytest.raises(RepoError, match=CERT_HINT) as exc:
        await GitRepo(https.url("origin.git"), "main", tmp_path / "wd").fetch()
    assert "certificate" in exc.value.message.split(";")[0] and "GIT_SSL_CAINFO" in exc.value.message
    assert TOKEN not in exc.value.message
    assert not https.requests  # refused in the TLS handshake: git never sent a request
    monkeypatch.setenv("GIT_SSL_CAINFO", str(https.ca))
    with pytest.raises(RepoError, match=CERT_HINT) as exc:
        await GitRepo(https.url("origin.git").replace("127.0.0.1", "localhost"), "main", tmp_path / "wd2").fetch()
    assert TOKEN not in exc.value.message


# -- the whole sync path -------------------------------------------------------------------------


async def open_runtime(tmp_path: Path, url: str) -> Runtime:
    """A runtime like test_gitops_service's ``rt``, with GitOps on ``url``; hosts reached locally."""
    settings = parse_settings(
        f"database:\n  driver: sqlite3\n  source: {tmp_path}/db.sqlite\n"
        f"secrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {json.dumps(url)}\n  branch: main\n  timeout: 10s\n", base_dir=tmp_path)
    return await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})


@pytest.fixture
async def https_rt(tmp_path: Path, https: GitHTTPSServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.setenv("GIT_SSL_CAINFO", str(https.ca))
    runtime = await open_runtime(tmp_path, https.url("origin.git"))
    yield runtime
    await runtime.close()


async def test_sync_over_https_with_a_token(https_rt: Runtime, repo: Repo, root: Path, https: GitHTTPSServer,
                                            git_log: Path) -> None:
    """The service path of a sync (plan, sync, status) from an https repository with a token: files written,
    and the token in no git argv, record or status."""
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": TEMPLATE,
                       "sync.yaml": manifest(root)}, "first")
    gitops = https_rt.gitops
    assert gitops is not None
    plan = await gitops.plan()
    assert plan["counts"]["files"] == {"changed": 2} and files_of(root) == {}
    record = await gitops.sync(trigger="cli", user="t")
    assert record["status"] == "success" and record["commit"] == sha
    assert statuses(record) == {"h1": "changed", "h2": "changed"}
    assert files_of(root)["h1/app.conf"] == f"# {sha[:10]}\nname=h1\nworkers=2\n"
    status = await gitops.status()
    assert status["repo"] == f"https://{USER}:***@127.0.0.1:{https.port}/origin.git"
    assert TOKEN not in json.dumps([plan, record, status], default=str)
    assert TOKEN not in git_log.read_text() and "fetch" in git_log.read_text()


def test_cli_sync_with_a_wrong_token(tmp_path: Path, repo: Repo, https: GitHTTPSServer) -> None:
    """`small-yi sync plan` with a refused token, GIT_SSL_CAINFO in its environment: it fails with the hint,
    and the token does not show in its output."""
    repo.commit(FILES, "first")
    wrong = f"wrong-{uuid.uuid4().hex}"
    config = write_config(tmp_path, extra=f"gitops:\n  repo: {https.url('origin.git', token=wrong)}\n  branch: main\n")
    out = cli("sync", "plan", config=config, env={"GIT_SSL_CAINFO": str(https.ca)}, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"of https://{USER}:***@127.0.0.1:{https.port}/origin.git failed: Authentication failed" in out.stderr
    assert "check the user and token in gitops.repo" in out.stderr
    assert wrong not in out.stdout + out.stderr


# -- ssh (the OpenSSH fleet) ---------------------------------------------------------------------


@pytest.fixture
def fleet_repo() -> Iterator[Repo]:
    """A bare repository the fleet's login user can read: in a world-readable folder, and owned by that
    user (git on the "remote" side refuses a repository of another owner: safe.directory)."""
    folder = Path(f"/tmp/small-yi-gitops-remote-{uuid.uuid4().hex[:8]}")
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    try:
        yield Repo(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def give_to_fleet(repo: Repo, fleet: Fleet) -> None:
    """After the last commit (root's pushes would then meet the same ownership check)."""
    subprocess.run(["chown", "-R", fleet.user, str(repo.bare)], check=True)


def ssh_command(key: Path, known_hosts: Path, *extra: str) -> str:
    """GIT_SSH_COMMAND as docs/gitops.md shows it; ``-F /dev/null`` and IdentitiesOnly keep this machine's
    ssh config and agent out of the test."""
    return " ".join(["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
                     "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
                     "-o", "BatchMode=yes", *extra])


@pytest.mark.fleet
async def test_ssh_fetches_with_the_key_in_git_ssh_command(tmp_path: Path, fleet: Fleet, fleet_repo: Repo,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """ssh://user@host:port/abs/path and scp-style user@host:/abs/path, key and known_hosts from
    GIT_SSH_COMMAND: fetched from the fleet's sshd."""
    sha = fleet_repo.commit(FILES, "first")
    give_to_fleet(fleet_repo, fleet)
    (_, address), = fleet.hosts[:1]
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_command(fleet.directory / "id_ed25519", fleet.directory / "known_hosts"))
    git_repo = GitRepo(f"ssh://{fleet.user}@{address}:{fleet.port}{fleet_repo.bare}", "main", tmp_path / "wd")
    assert await git_repo.fetch() == sha
    assert (await git_repo.snapshot(sha)).files["sync.yaml"] == b"files: []\n"
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_command(fleet.directory / "id_ed25519", fleet.directory / "known_hosts",
                                                      "-p", str(fleet.port)))
    scp = GitRepo(f"{fleet.user}@{address}:{fleet_repo.bare}", "main", tmp_path / "wd2")
    assert await scp.fetch() == sha


@pytest.mark.fleet
async def test_ssh_wrong_key_and_unknown_host_fail_fast_with_the_hint(tmp_path: Path, fleet: Fleet, fleet_repo: Repo,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A key the host does not accept, then a host key not in known_hosts (StrictHostKeyChecking=yes): each a
    RepoError at once (no prompt, no waiting for the time limit) with ssh's reason and the GIT_SSH_COMMAND hint."""
    fleet_repo.commit(FILES, "first")
    give_to_fleet(fleet_repo, fleet)
    (_, address), = fleet.hosts[:1]
    url = f"ssh://{fleet.user}@{address}:{fleet.port}{fleet_repo.bare}"
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cases = [(wrong_key, fleet.directory / "known_hosts", "Permission denied (publickey)"),
             (fleet.directory / "id_ed25519", empty, "Host key verification failed")]
    for i, (key, known_hosts, reason) in enumerate(cases):
        monkeypatch.setenv("GIT_SSH_COMMAND", ssh_command(key, known_hosts))
        started = time.monotonic()
        with pytest.raises(RepoError) as exc:
            async with asyncio.timeout(20):
                await GitRepo(url, "main", tmp_path / f"wd{i}").fetch()
        assert time.monotonic() - started < 10
        assert reason in exc.value.message and SSH_HINT in exc.value.message, exc.value.message


@pytest.fixture
async def ssh_rt(tmp_path: Path, fleet: Fleet, fleet_repo: Repo,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Runtime, str]]:
    (_, address), = fleet.hosts[:1]
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_command(fleet.directory / "id_ed25519", fleet.directory / "known_hosts"))
    runtime = await open_runtime(tmp_path, f"ssh://{fleet.user}@{address}:{fleet.port}{fleet_repo.bare}")
    yield runtime, address
    await runtime.close()


@pytest.mark.fleet
async def test_sync_over_ssh(ssh_rt: tuple[Runtime, str], fleet: Fleet, fleet_repo: Repo, root: Path) -> None:
    """The service path of a sync from an ssh repository, GIT_SSH_COMMAND from the server's environment."""
    runtime, _ = ssh_rt
    sha = fleet_repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": TEMPLATE,
                             "sync.yaml": manifest(root)}, "first")
    give_to_fleet(fleet_repo, fleet)
    assert runtime.gitops is not None
    record = await runtime.gitops.sync(trigger="cli", user="t")
    assert record["status"] == "success" and record["commit"] == sha and statuses(record) == {"h1": "changed"}
    assert files_of(root) == {"h1/app.conf": f"# {sha[:10]}\nname=h1\nworkers=2\n"}


# -- the time limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["https", "ssh"])
async def test_a_server_that_never_answers_is_stopped_with_its_children(
        tmp_path: Path, scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and then says nothing: git (and git-remote-https or ssh, which it started and
    which hold the connection) is killed at the time limit, a RepoError says so, and no process is left."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass  # read everything, answer nothing; returns when the client is gone

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    name = f"hang-{uuid.uuid4().hex[:12]}.git"  # in every argv the fetch causes: how to find them in /proc
    monkeypatch.setattr(repo_module, "GIT_TIMEOUT", 2.0)
    if scheme == "https":
        url = f"https://{USER}:{TOKEN}@127.0.0.1:{port}/{name}"

        def is_child(cmdline: str) -> bool:
            return "remote-https" in cmdline
    else:
        url = f"ssh://git@127.0.0.1:{port}/{name}"

        def is_child(cmdline: str) -> bool:
            return cmdline.startswith("ssh ")
        monkeypatch.setenv("GIT_SSH_COMMAND", f"ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={tmp_path}/kh")
    fetch = asyncio.ensure_future(GitRepo(url, "main", tmp_path / "wd").fetch())
    try:
        deadline = time.monotonic() + 5
        while not (connections and any(is_child(p) for p in processes_with(name))):
            assert time.monotonic() < deadline and not fetch.done(), (processes_with(name), fetch)
            await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RepoError, match="took longer than 2s and was stopped") as exc:
            await fetch
        assert time.monotonic() - started < 4
        assert TOKEN not in exc.value.message
        deadline = time.monotonic() + 2
        while left := processes_with(name):  # SIGKILL is immediate, the exit a moment later
            assert time.monotonic() < deadline, left
            await asyncio.sleep(0.05)
    finally:
        fetch.cancel()  # a no-op once it is done; kills git's group if an assertion above failed
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
