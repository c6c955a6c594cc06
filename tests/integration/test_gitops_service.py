"""GitOps end to end in-process, with real git and a real database; hosts reached by the local connector.

Every "host" writes under its own folder of a temp directory (the paths are templated with the host's
name), so one machine plays several hosts. The fleet tests (test_gitops_fleet.py) do the same over SSH.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from smallyi.audit.trail import AuditFilter
from smallyi.config import parse_settings
from smallyi.errors import AuthError, Conflict, InputError, TemplateError
from smallyi.execution.connectors.local import LocalConnector
from smallyi.gitops import webhook
from smallyi.runtime import Runtime

SECRET = "hook-secret"


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ann Ops", "GIT_AUTHOR_EMAIL": "ann@example.com",
           "GIT_COMMITTER_NAME": "Ann Ops", "GIT_COMMITTER_EMAIL": "ann@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class Repo:
    """A bare repository and a clone that commits and pushes to it."""

    def __init__(self, tmp: Path) -> None:
        self.bare = tmp / "origin.git"
        self.work = tmp / "work"
        git("init", "-q", "--bare", "--initial-branch=main", str(self.bare), cwd=tmp)
        git("clone", "-q", str(self.bare), str(self.work), cwd=tmp)
        git("checkout", "-q", "-b", "main", cwd=self.work)

    def commit(self, files: dict[str, str | None], message: str, branch: str = "main") -> str:
        for path, text in files.items():
            p = self.work / path
            if text is None:
                p.unlink()
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", f"HEAD:{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def hosts_yaml(names: list[str], **host_vars: dict[str, Any]) -> str:
    lines = ["group: web", "vars:", "  workers: 2", "hosts:"]
    for n in names:
        lines += [f"  - name: {n}", "    address: 127.0.0.1"]
        if n in host_vars:
            lines.append(f"    vars: {json.dumps(host_vars[n])}")
    return "\n".join(lines) + "\n"


def manifest(root: Path, *, check: str = "", reload: str = "", mode: str = "0640") -> str:
    entry = [
        "files:", "  - template: app.conf.j2", f"    path: {root}/{{{{ host.name }}}}/app.conf",
        "    target: {group: web}", f'    mode: "{mode}"', "    mkdir: true",
    ]
    if check:
        entry.append(f"    check: {json.dumps(check)}")
    if reload:
        entry.append(f"    reload: {json.dumps(reload)}")
    return "\n".join(entry) + "\n"


TEMPLATE = "# {{ commit.short }}\nname={{ host.name }}\nworkers={{ workers }}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "hosts-root"
    r.mkdir()
    return r


@pytest.fixture
async def rt(tmp_path: Path, repo: Repo) -> AsyncIterator[Runtime]:
    settings = parse_settings(
        f"database:\n  driver: sqlite3\n  source: {tmp_path}/db.sqlite\n"
        f"secrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n  webhook_secret: {SECRET}\n  timeout: 10s\n",
        base_dir=tmp_path,
    )
    runtime = await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})
    yield runtime
    await runtime.close()


def files_of(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def statuses(record: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in record["hosts"]}


async def test_plan_shows_diffs_and_writes_nothing(rt: Runtime, repo: Repo, root: Path) -> None:
    """A plan lists each host's would-be change with a diff and touches no host."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": TEMPLATE,
                 "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    plan = await rt.gitops.plan()
    assert plan["counts"]["files"] == {"changed": 2}
    diffs = [f["diff"] for h in plan["hosts"] for f in h["files"]]
    assert all("+name=" in d and d.startswith("--- /dev/null") for d in diffs)
    assert files_of(root) == {}


async def test_apply_writes_then_skips_unchanged(rt: Runtime, repo: Repo, root: Path) -> None:
    """A sync writes each host's file with its mode; a second sync leaves unchanged files untouched."""
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": TEMPLATE,
                       "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    first = await rt.gitops.sync(trigger="cli", user="t")
    assert first["status"] == "success" and first["commit"] == sha and first["author"] == "Ann Ops"
    assert statuses(first) == {"h1": "changed", "h2": "changed"}
    assert files_of(root) == {"h1/app.conf": f"# {sha[:10]}\nname=h1\nworkers=2\n",
                              "h2/app.conf": f"# {sha[:10]}\nname=h2\nworkers=2\n"}
    assert oct((root / "h1/app.conf").stat().st_mode & 0o777) == "0o640"
    inode = (root / "h1/app.conf").stat().st_ino
    second = await rt.gitops.sync(trigger="cli", user="t")
    assert statuses(second) == {"h1": "unchanged", "h2": "unchanged"}
    assert (root / "h1/app.conf").stat().st_ino == inode
    assert not [p for p in root.rglob(".*smallyi-*")]  # no temporary file left behind


async def test_only_changed_hosts_are_written(rt: Runtime, repo: Repo, root: Path) -> None:
    """A commit changing one host's variables rewrites that host's file only."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "w={{ workers }}\n",
                 "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"], h2={"workers": 9})}, "h2 gets 9 workers")
    record = await rt.gitops.sync(trigger="cli", user="t")
    assert statuses(record) == {"h1": "unchanged", "h2": "changed"}
    h2 = next(h for h in record["hosts"] if h["host"] == "h2")
    assert "-w=2" in h2["files"][0]["diff"] and "+w=9" in h2["files"][0]["diff"]


async def test_failing_check_restores_the_previous_file(rt: Runtime, repo: Repo, root: Path) -> None:
    """Where the check fails the old file (content and mode) comes back; other hosts keep the new one."""
    files = {"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "w={{ workers }}\n",
             "sync.yaml": manifest(root, check="! grep -q w=666 \"$SMALLYI_PATH\"", mode="0600")}
    repo.commit(files, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"], h1={"workers": 666}, h2={"workers": 3}),
                 "sync.yaml": manifest(root, check="! grep -q w=666 \"$SMALLYI_PATH\"", mode="0644")}, "bad for h1")
    record = await rt.gitops.sync(trigger="cli", user="t")
    assert record["status"] == "failed"
    assert statuses(record) == {"h1": "restored", "h2": "changed"}
    assert (root / "h1/app.conf").read_text() == "w=2\n"
    assert oct((root / "h1/app.conf").stat().st_mode & 0o777) == "0o600"
    assert (root / "h2/app.conf").read_text() == "w=3\n"
    h1 = next(h for h in record["hosts"] if h["host"] == "h1")["files"][0]
    assert "check failed (exit status 1)" in h1["reason"] and "put back" in h1["reason"]


async def test_failing_check_on_a_new_file_removes_it(rt: Runtime, repo: Repo, root: Path) -> None:
    """A new file whose check fails is removed again (the host had none before)."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root, check="false")}, "first")
    assert rt.gitops is not None
    record = await rt.gitops.sync(trigger="cli", user="t")
    assert statuses(record) == {"h1": "restored"}
    assert not (root / "h1/app.conf").exists()


async def test_reload_runs_after_a_change_only(rt: Runtime, repo: Repo, root: Path) -> None:
    """reload runs where the file changed (with SMALLYI_PATH), not on an unchanged re-sync; its failure is reported."""
    reload = 'echo "$SMALLYI_PATH" >> "$(dirname "$SMALLYI_PATH")/reloads"'
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root, reload=reload)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    await rt.gitops.sync(trigger="cli", user="t")
    assert (root / "h1/reloads").read_text() == f"{root}/h1/app.conf\n"
    repo.commit({"templates/app.conf.j2": "y\n", "sync.yaml": manifest(root, reload="exit 4")}, "bad reload")
    record = await rt.gitops.sync(trigger="cli", user="t")
    f = record["hosts"][0]["files"][0]
    assert f["status"] == "failed" and "reload failed: exit status 4" in f["reason"]
    assert (root / "h1/app.conf").read_text() == "y\n"


async def test_template_error_writes_nothing_anywhere(rt: Runtime, repo: Repo, root: Path) -> None:
    """One host's undefined variable stops the whole sync before any host is touched; the record says why."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"], h1={"extra": "e"}),
                 "templates/app.conf.j2": "w={{ workers }}\n", "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    before = files_of(root)
    repo.commit({"templates/app.conf.j2": "w={{ workers }} new\nextra={{ extra }}\n"}, "extra only on h1")
    with pytest.raises(TemplateError) as info:
        await rt.gitops.sync(trigger="cli", user="t")
    assert "templates/app.conf.j2, line 2, host h2: undefined variable: 'extra' is undefined" in info.value.message
    assert files_of(root) == before
    items, _ = await rt.gitops.history(kind="sync")
    assert items[0]["status"] == "error" and "line 2, host h2" in items[0]["reason"]


async def test_rollback_redistributes_an_earlier_commit(rt: Runtime, repo: Repo, root: Path) -> None:
    """Rolling back re-renders the earlier commit (its variables and templates) and writes it out."""
    first = repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "v1 {{ workers }}\n",
                         "sync.yaml": manifest(root)}, "v1")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    repo.commit({"templates/app.conf.j2": "v2 {{ workers }}\n"}, "v2")
    await rt.gitops.sync(trigger="cli", user="t")
    assert (root / "h1/app.conf").read_text() == "v2 2\n"
    record = await rt.gitops.rollback(first[:8], trigger="cli", user="t")
    assert record["kind"] == "rollback" and record["commit"] == first and record["status"] == "success"
    assert (root / "h1/app.conf").read_text() == "v1 2\n"
    with pytest.raises(InputError, match="not a commit id"):
        await rt.gitops.rollback("--upload-pack=touch /tmp/pwned", trigger="cli", user="t")


async def test_drift_reports_changed_and_missing_files(rt: Runtime, repo: Repo, root: Path) -> None:
    """The drift check names hosts whose file was edited or deleted since the last sync."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2", "h3"]), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    clean = await rt.gitops.drift(trigger="cli", user="t")
    assert clean["status"] == "success"
    (root / "h1/app.conf").write_text("hand edit\n")
    (root / "h3/app.conf").unlink()
    record = await rt.gitops.drift(trigger="cli", user="t")
    assert record["status"] == "failed" and record["kind"] == "drift"
    assert statuses(record) == {"h1": "drifted", "h2": "unchanged", "h3": "missing"}
    assert "2 host(s) drifted: h1, h3" in record["reason"]


async def test_repo_hosts_become_read_only_git_inventory(rt: Runtime, repo: Repo, root: Path) -> None:
    """hosts/*.yaml lands in the inventory as source git: edits are refused, removal follows the repo."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    assert {h.name for h in await rt.inventory.all_hosts()} >= {"h1", "h2"}
    with pytest.raises(Conflict, match="comes from the GitOps repository"):
        await rt.inventory.update_host("h1", description="edited by hand")
    with pytest.raises(Conflict):
        await rt.inventory.delete_host("h2")
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1"])}, "h2 retired")
    await rt.gitops.sync(trigger="cli", user="t")
    assert "h2" not in {h.name for h in await rt.inventory.all_hosts()}
    assert statuses(await rt.gitops.drift(trigger="cli", user="t")) == {"h1": "unchanged"}  # h2 no longer watched


def push_body(sha: str, ref: str = "refs/heads/main") -> bytes:
    return json.dumps({"ref": ref, "before": "0" * 40, "after": sha, "pusher": {"name": "ann"}}).encode()


async def test_webhook_syncs_a_commit_once(rt: Runtime, repo: Repo, root: Path) -> None:
    """A signed push is synced in the background; the same commit delivered again is a duplicate."""
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "x\n",
                       "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    body = push_body(sha)
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign_github(SECRET, body)}
    first = await rt.gitops.webhook(headers, body)
    again = await rt.gitops.webhook(headers, body)
    assert first["status"] == "accepted" and again["status"] == "duplicate"
    for t in list(rt.gitops._tasks):
        await t
    record = await rt.gitops.get(first["sync"])
    assert record["status"] == "success" and record["trigger"] == "webhook" and record["requested_by"] == "github:ann"
    assert (root / "h1/app.conf").read_text() == "x\n"
    assert (await rt.gitops.webhook(headers, body))["status"] == "duplicate"


async def test_webhook_ignores_other_branches_and_refuses_bad_signatures(rt: Runtime, repo: Repo, root: Path) -> None:
    """Pushes to other branches are ignored; a wrong signature is refused and audited."""
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "x\n",
                       "sync.yaml": manifest(root)}, "on a feature branch", branch="feature")
    assert rt.gitops is not None
    body = push_body(sha, "refs/heads/feature")
    ignored = await rt.gitops.webhook(
        {"X-Gitea-Event": "push", "X-Gitea-Signature": webhook.sign_gitea(SECRET, body)}, body)
    assert ignored["status"] == "ignored" and "not to branch main" in ignored["reason"]
    with pytest.raises(AuthError, match="wrong X-Gitlab-Token"):
        await rt.gitops.webhook({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"}, body, client="203.0.113.9")
    entries, _ = await rt.audit.search(AuditFilter(action="gitops.webhook"), limit=10, offset=0)
    assert entries and entries[0].result == "denied" and entries[0].client == "203.0.113.9"
    assert files_of(root) == {}


async def test_polling_syncs_each_new_head_once(rt: Runtime, repo: Repo, root: Path) -> None:
    """poll_once syncs a moved branch head once, does nothing while it stays, and never undoes a rollback."""
    first = repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "v1\n",
                         "sync.yaml": manifest(root)}, "v1")
    assert rt.gitops is not None

    async def poll() -> dict[str, Any] | None:
        assert rt.gitops is not None
        out = await rt.gitops.poll_once()
        for t in list(rt.gitops._tasks):
            await t
        return out

    assert (await poll() or {}).get("status") == "accepted"
    assert await poll() is None
    repo.commit({"templates/app.conf.j2": "v2\n"}, "v2")
    assert (await poll() or {}).get("status") == "accepted"
    assert (root / "h1/app.conf").read_text() == "v2\n"
    await rt.gitops.rollback(first, trigger="cli", user="t")
    assert await poll() is None
    assert (root / "h1/app.conf").read_text() == "v1\n"


async def test_progress_events_reach_the_listener_and_the_bus(rt: Runtime, repo: Repo, root: Path) -> None:
    """A sync reports start, phases, each file and its end, in order, to its listener and bus topic."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root, check="true")}, "first")
    assert rt.gitops is not None
    seen: list[dict[str, Any]] = []
    record = await rt.gitops.sync(trigger="cli", user="t", listener=seen.append)
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("file") == 2
    assert [e["phase"] for e in seen if e["type"] == "phase"] == ["fetch", "write", "check"]
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    assert all(e["sync"] == record["id"] for e in seen)


@pytest.mark.postgres
async def test_sync_rollback_and_drift_on_postgres(tmp_path: Path, repo: Repo, root: Path, pg_url: str) -> None:
    """The same records, state and git inventory work on PostgreSQL."""
    settings = parse_settings(
        f"database:\n  driver: postgres\n  source: {pg_url}\nsecrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n", base_dir=tmp_path)
    first = repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "v1\n",
                         "sync.yaml": manifest(root)}, "v1")
    runtime = await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})
    try:
        assert runtime.gitops is not None
        assert (await runtime.gitops.sync(trigger="cli", user="t"))["status"] == "success"
        repo.commit({"templates/app.conf.j2": "v2\n", "hosts/web.yaml": hosts_yaml(["h1"])}, "v2")
        await runtime.gitops.sync(trigger="cli", user="t")
        back = await runtime.gitops.rollback(first, trigger="cli", user="t")
        assert statuses(back) == {"h1": "changed", "h2": "unchanged"}
        (root / "h1/app.conf").write_text("edited\n")
        assert statuses(await runtime.gitops.drift(trigger="cli", user="t")) == {"h1": "drifted", "h2": "unchanged"}
    finally:
        await runtime.close()


async def test_a_mode_only_change_is_applied(rt: Runtime, repo: Repo, root: Path) -> None:
    """A commit that changes only a file's mode (say, 0640 to 0600 for a file that now holds a password)
    is a change: the plan says so, the sync applies it with the same content; an owner given as the ids
    the file already has is no change."""
    import os

    tpl = "w={{ workers }}\n"
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": tpl,
                 "sync.yaml": manifest(root)}, "first")
    assert rt.gitops is not None
    await rt.gitops.sync(trigger="cli", user="t")
    assert oct((root / "h1/app.conf").stat().st_mode & 0o777) == "0o640"
    repo.commit({"sync.yaml": manifest(root, mode="0600")}, "tighten the mode")
    plan = await rt.gitops.plan()
    diff = plan["hosts"][0]["files"][0]["diff"]
    assert plan["counts"]["files"] == {"changed": 1} and "mode 0640 -> 0600" in diff, plan
    record = await rt.gitops.sync(trigger="cli", user="t")
    assert statuses(record) == {"h1": "changed"}
    assert oct((root / "h1/app.conf").stat().st_mode & 0o777) == "0o600"
    assert (root / "h1/app.conf").read_text() == "w=2\n"
    owned = manifest(root, mode="0600").replace('    mode: "0600"', f'    mode: "0600"\n    owner: "{os.getuid()}:{os.getgid()}"')
    repo.commit({"sync.yaml": owned}, "state the owner it already has")
    assert statuses(await rt.gitops.sync(trigger="cli", user="t")) == {"h1": "unchanged"}


def server_config(tmp_path: Path, repo: Repo, hook: str, gitops: str) -> str:
    """A server's config: an admin, channel ``hook`` posting to ``hook``/hook, GitOps on ``repo`` plus ``gitops``."""
    from support import ADMIN_HASH

    return (f"database:\n  source: {tmp_path}/db.sqlite\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f"auth:\n  users:\n    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n"
            f"notify:\n  retries: 0\n  channels:\n    hook:\n      kind: webhook\n      url: {hook}/hook\n"
            f"gitops:\n  repo: {repo.bare}\n  branch: main\n  timeout: 10s\n{gitops}")


def test_the_server_notifies_when_syncs_end(tmp_path: Path, repo: Repo, root: Path) -> None:
    """gitops.notify: each sync that ends sends one message to the channel: success with the commit and
    its message, a failed check naming the restored host and file."""
    import time

    from test_notify import Receiver

    from smallyi.app import create_app
    from support import ADMIN_PASSWORD, starlette_test_client

    receiver = Receiver(answer=lambda seen: (200, {"ok": True}))
    text = server_config(tmp_path, repo, receiver.url,
                         "  poll_interval: 0s\n  drift_interval: 0s\n  notify:\n    channels: [hook]\n    on: [finish]\n")
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "w={{ workers }}\n",
                       "sync.yaml": manifest(root, check="! grep -q w=666 \"$SMALLYI_PATH\"")}, "first config")
    app = create_app(parse_settings(text, base_dir=tmp_path), connectors={"ssh": LocalConnector()})

    def messages(n: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 20
        while len(receiver.seen) < n:
            assert time.monotonic() < deadline, [s.json() for s in receiver.seen]
            time.sleep(0.05)
        return [s.json() for s in receiver.seen]

    try:
        with starlette_test_client()(app) as c:
            token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
            c.headers["Authorization"] = f"Bearer {token}"
            assert c.post("/api/v1/gitops/sync", json={}).status_code in (200, 201, 202)
            ok = messages(1)[0]
            assert ok["event"] == "gitops_sync" and ok["status"] == "success", ok
            assert f"GitOps sync #1 of {sha[:10]} success" in ok["title"] and "first config (Ann Ops)" in ok["text"]
            repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"], h1={"workers": 666})}, "bad for h1")
            assert c.post("/api/v1/gitops/sync", json={}).status_code in (200, 201, 202)
            bad = messages(2)[1]
            assert bad["status"] == "failure" and "failed" in bad["title"], bad
            assert f"- h1 {root}/h1/app.conf: restored" in bad["text"] and "h2" not in bad["text"].split("\n", 2)[2]
            time.sleep(0.5)
            assert len(receiver.seen) == 2  # one message per sync
    finally:
        receiver.close()


async def test_a_failed_commit_is_synced_again_on_request_not_on_redelivery(rt: Runtime, repo: Repo,
                                                                           root: Path) -> None:
    """A commit whose sync failed on a host (its folder is missing) is not synced again by a redelivered
    webhook (that is a duplicate), but `sync apply` of it again retries; once the host is fixed it succeeds."""
    no_mkdir = manifest(root).replace("    mkdir: true\n", "")
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1", "h2"]), "templates/app.conf.j2": "w={{ workers }}\n",
                       "sync.yaml": no_mkdir}, "first")
    (root / "h2").mkdir()
    assert rt.gitops is not None
    first = await rt.gitops.sync(trigger="cli", user="t")
    assert first["status"] == "failed" and statuses(first) == {"h1": "failed", "h2": "changed"}
    body = push_body(sha)
    again = await rt.gitops.webhook({"X-GitHub-Event": "push",
                                     "X-Hub-Signature-256": webhook.sign_github(SECRET, body)}, body)
    assert again["status"] == "duplicate"
    (root / "h1").mkdir()
    retried = await rt.gitops.sync(sha, trigger="cli", user="t")
    assert retried["status"] == "success" and statuses(retried) == {"h1": "changed", "h2": "unchanged"}
    assert (root / "h1/app.conf").read_text() == "w=2\n"


def test_the_server_polls_and_checks_drift_on_schedule(tmp_path: Path, repo: Repo, root: Path) -> None:
    """With poll_interval and drift_interval set, the server alone syncs a pushed commit (trigger poll)
    and later finds a file edited on a host (a drift record, trigger schedule), and says so on the
    channel (notify on failure: the successful poll sync sends nothing)."""
    import time

    from test_notify import Receiver

    from smallyi.app import create_app
    from support import ADMIN_PASSWORD, starlette_test_client

    receiver = Receiver(answer=lambda seen: (200, {"ok": True}))
    text = server_config(tmp_path, repo, receiver.url,
                         "  poll_interval: 0.5s\n  drift_interval: 1s\n  notify:\n    channels: [hook]\n")
    sha = repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": "w={{ workers }}\n",
                       "sync.yaml": manifest(root)}, "polled")
    app = create_app(parse_settings(text, base_dir=tmp_path), connectors={"ssh": LocalConnector()})

    def until(pred: Any, what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while not (got := pred()):
            assert time.monotonic() < deadline, what
            time.sleep(0.1)
        return got

    try:
        with starlette_test_client()(app) as c:
            token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
            c.headers["Authorization"] = f"Bearer {token}"

            def records(kind: str) -> list[dict[str, Any]]:
                return [r for r in c.get("/api/v1/gitops/syncs").json()["items"] if r["kind"] == kind]

            synced = until(lambda: [r for r in records("sync") if r["status"] == "success"], "no polled sync")
            assert synced[0]["trigger"] == "poll" and synced[0]["commit"] == sha
            assert (root / "h1/app.conf").read_text() == "w=2\n"
            clean = until(lambda: [r for r in records("drift") if r["status"] == "success"], "no drift check")
            assert clean[0]["trigger"] == "schedule"
            (root / "h1/app.conf").write_text("w=999\n")  # someone edits the file on the host
            drifted = until(lambda: [r for r in records("drift") if r["status"] == "failed"], "drift not found")
            assert "1 host(s) drifted: h1" in drifted[0]["reason"]
            msg = until(lambda: [s.json() for s in receiver.seen], "no drift message")[0]
            assert msg["status"] == "failure" and "GitOps drift" in msg["title"], msg
            assert "drifted" in msg["text"] and "h1" in msg["text"]
            assert all(s.json()["title"].find("GitOps sync") < 0 for s in receiver.seen)  # success: quiet
    finally:
        receiver.close()


def test_the_stream_of_a_sync_run_elsewhere_ends_with_its_record(tmp_path: Path, repo: Repo) -> None:
    """A sync run by another process (`small-yi sync apply` on the same database) sends this server no
    events: its stream still ends, with the final record, soon after that process finishes it."""
    import asyncio
    import threading
    import time

    from smallyi.app import create_app
    from smallyi.gitops.snapshot import Commit
    from smallyi.gitops.store import SyncStore
    from support import ADMIN_HASH, ADMIN_PASSWORD, starlette_test_client

    text = (f"database:\n  source: {tmp_path}/db.sqlite\nsecrets:\n  key_file: {tmp_path}/master.key\n"
            f"auth:\n  users:\n    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n"
            f"gitops:\n  repo: {repo.bare}\n  branch: main\n  drift_interval: 0s\n")
    settings = parse_settings(text, base_dir=tmp_path)

    async def elsewhere(action: str, sync_id: int = 0) -> int:
        other = await Runtime.open(settings, kind="cli")
        try:
            store = SyncStore(other.db)
            if action == "start":
                return await store.create(kind="sync", trigger="cli", commit=Commit("b" * 40, branch="main"),
                                          requested_by="cli:ann", runner="cli:elsewhere:1")
            await store.finish(sync_id, status="success", reason="")
            return sync_id
        finally:
            await other.close()

    with starlette_test_client()(create_app(settings)) as c:
        token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        sync_id = asyncio.run(elsewhere("start"))
        finisher = threading.Timer(1.0, lambda: asyncio.run(elsewhere("finish", sync_id)))
        t0 = time.monotonic()
        finisher.start()
        with c.websocket_connect(f"/api/v1/gitops/syncs/{sync_id}/stream", subprotocols=[f"bearer.{token}"]) as ws:
            end = ws.receive_json()
        finisher.join()
    assert end["type"] == "end" and end["sync"]["status"] == "success" and end["sync"]["requested_by"] == "cli:ann"
    assert time.monotonic() - t0 < 10
