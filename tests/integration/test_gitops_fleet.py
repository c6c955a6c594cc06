"""GitOps against a real `small-yi serve` and the OpenSSH fleet, driven by real git pushes.

A bare repository's post-receive hook posts a GitHub-style push event, signed with the webhook
secret, to the server, exactly as a Git host would; the server fetches, renders and writes over SFTP.
All fleet hosts are one machine, so each host writes under its own folder (``{{ host.name }}``) of a
world-writable test folder (the hosts log in as ``fleet``).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from smallyi.gitops import webhook
from smallyi.testing import Fleet
from support import Server, start_server, write_config

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

SECRET = "fleet-hook-secret"
HOOK = '''#!{python}
"""post-receive: tell small-yi about each pushed branch, signed as GitHub signs."""
import hashlib, hmac, json, sys, urllib.request
for line in sys.stdin:
    old, new, ref = line.split()
    body = json.dumps({{"ref": ref, "before": old, "after": new, "pusher": {{"name": "hook"}}}}).encode()
    sig = "sha256=" + hmac.new({secret!r}.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request({url!r}, data=body, method="POST", headers={{
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": sig}})
    with urllib.request.urlopen(req, timeout=10) as r:
        print("small-yi:", r.status, r.read().decode())
'''


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ann Ops", "GIT_AUTHOR_EMAIL": "ann@example.com",
           "GIT_COMMITTER_NAME": "Ann Ops", "GIT_COMMITTER_EMAIL": "ann@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class Setup:
    """A bare repo with the hook, a clone, a server configured for both, and the hosts' folder."""

    def __init__(self, tmp: Path, fleet: Fleet, root: Path) -> None:
        self.root = root
        self.fleet = fleet
        self.hosts = fleet.hosts[:3]
        self.bare = tmp / "origin.git"
        self.work = tmp / "work"
        git("init", "-q", "--bare", "--initial-branch=main", str(self.bare), cwd=tmp)
        git("clone", "-q", str(self.bare), str(self.work), cwd=tmp)
        git("checkout", "-q", "-b", "main", cwd=self.work)
        gitops = (f"gitops:\n  repo: {self.bare}\n  branch: main\n  webhook_secret: {SECRET}\n"
                  "  timeout: 20s\n  drift_interval: 0s\n")
        self.server: Server = start_server(write_config(tmp, extra=fleet.ssh_yaml() + gitops))
        self.http = self.server.client()
        hook = self.bare / "hooks" / "post-receive"
        hook.write_text(HOOK.format(python=sys.executable, secret=SECRET,
                                    url=f"{self.server.url}/api/v1/gitops/webhook"))
        hook.chmod(0o755)

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def hosts_yaml(self, **host_vars: dict[str, Any]) -> str:
        lines = ["group: web", "vars:", "  workers: 2", "hosts:"]
        for name, address in self.hosts:
            lines += [f"  - name: {name}", f"    address: {address}", f"    port: {self.fleet.port}", f"    user: {self.fleet.user}"]
            if name in host_vars:
                lines.append(f"    vars: {json.dumps(host_vars[name])}")
        return "\n".join(lines) + "\n"

    def manifest(self, *, check: str = "") -> str:
        text = textwrap.dedent(f"""\
            files:
              - template: app.conf.j2
                path: "{self.root}/{{{{ host.name }}}}/app.conf"
                target: {{group: web}}
                mode: "0640"
                owner: {self.fleet.user}
                mkdir: true
            """)
        return text + (f"    check: {json.dumps(check)}\n" if check else "")

    def push(self, files: dict[str, str], message: str, branch: str = "main") -> tuple[str, str]:
        """Commit and push; returns the commit and what the hook printed (the server's answer)."""
        for path, text in files.items():
            p = self.work / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        out = subprocess.run(["git", "push", "origin", f"HEAD:{branch}"], cwd=self.work, capture_output=True,
                             text=True, check=True)
        return git("rev-parse", "HEAD", cwd=self.work), out.stderr

    def wait_sync(self, sha: str, timeout: float = 60) -> dict[str, Any]:
        """The finished sync record of commit ``sha`` (polling the API)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.http.get("/api/v1/gitops/syncs", params={"kind": "sync"}).json()["items"]
            done = [s for s in items if s["commit"] == sha and s["status"] not in ("queued", "running")]
            if done:
                return dict(self.http.get(f"/api/v1/gitops/syncs/{done[0]['id']}").json())
            time.sleep(0.2)
        raise AssertionError(f"no finished sync of {sha[:10]} within {timeout}s:\n{self.server.output()[-3000:]}")

    def file(self, host: str) -> Path:
        return self.root / host / "app.conf"


@pytest.fixture
def setup(tmp_path: Path, ssh_fleet: Fleet) -> Iterator[Setup]:
    root = Path(f"/tmp/small-yi-gitops-test-{uuid.uuid4().hex[:8]}")
    root.mkdir(mode=0o777)
    root.chmod(0o777)  # the fleet's login user writes here
    s = Setup(tmp_path, ssh_fleet, root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)


TEMPLATE = "# {{ commit.short }} {{ commit.subject }}\nname={{ host.name }} workers={{ workers }}\n"
#: no commit in it: a later commit that changes nothing else leaves the files unchanged
STATIC = "name={{ host.name }} workers={{ workers }}\n"


def statuses(record: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in record["hosts"]}


def test_push_syncs_files_to_the_fleet_over_sftp(setup: Setup) -> None:
    """A push fires the hook's signed webhook; the server writes each host's file (mode, owner) and records it."""
    sha, hook_out = setup.push({"hosts/web.yaml": setup.hosts_yaml(), "templates/app.conf.j2": STATIC,
                                "sync.yaml": setup.manifest()}, "first config")
    assert "small-yi: 202" in hook_out and '"accepted"' in hook_out
    record = setup.wait_sync(sha)
    assert record["status"] == "success", record
    assert record["author"] == "Ann Ops" and record["message"] == "first config" and record["trigger"] == "webhook"
    names = [n for n, _ in setup.hosts]
    assert statuses(record) == {n: "changed" for n in names}
    for n in names:
        st = setup.file(n).stat()
        assert setup.file(n).read_text() == f"name={n} workers=2\n"
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == pwd.getpwnam(setup.fleet.user).pw_uid
    plan = setup.http.post("/api/v1/gitops/plan", json={}).json()
    assert plan["counts"]["files"] == {"unchanged": len(names)}
    # a commit that changes nothing GitOps reads: synced, every file unchanged, none rewritten
    inode = setup.file(names[0]).stat().st_ino
    sha2, _ = setup.push({"README.md": "notes\n"}, "docs only")
    again = setup.wait_sync(sha2)
    assert again["status"] == "success" and statuses(again) == {n: "unchanged" for n in names}
    assert setup.file(names[0]).stat().st_ino == inode
    hosts = setup.http.get("/api/v1/hosts", params={"group": "web"}).json()["items"]
    assert sorted(h["name"] for h in hosts) == sorted(names)
    r = setup.http.patch(f"/api/v1/hosts/{names[0]}", json={"description": "by hand"})
    assert r.status_code == 409 and "GitOps repository" in r.json()["error"]["message"]


def test_failing_check_restores_and_template_error_writes_nothing(setup: Setup) -> None:
    """Over SSH: a failing check puts the old file back on that host; a template error touches no host."""
    names = [n for n, _ in setup.hosts]
    check = "! grep -q workers=666 \"$SMALLYI_PATH\""
    sha, _ = setup.push({"hosts/web.yaml": setup.hosts_yaml(), "templates/app.conf.j2": STATIC,
                         "sync.yaml": setup.manifest(check=check)}, "first")
    assert setup.wait_sync(sha)["status"] == "success"
    before = {n: setup.file(n).read_text() for n in names}
    sha2, _ = setup.push({"hosts/web.yaml": setup.hosts_yaml(**{names[0]: {"workers": 666}, names[1]: {"workers": 4}})},
                         "666 workers on the first host")
    record = setup.wait_sync(sha2)
    assert record["status"] == "failed"
    assert statuses(record) == {names[0]: "restored", names[1]: "changed", names[2]: "unchanged"}
    assert setup.file(names[0]).read_text() == before[names[0]]
    assert "workers=4" in setup.file(names[1]).read_text()
    now = {n: setup.file(n).read_text() for n in names}
    sha3, _ = setup.push({"templates/app.conf.j2": STATIC + "{{ only_some_hosts_have_this }}\n"}, "broken")
    broken = setup.wait_sync(sha3)
    assert broken["status"] == "error"
    assert "templates/app.conf.j2, line 2, host" in broken["reason"] and "only_some_hosts_have_this" in broken["reason"]
    assert {n: setup.file(n).read_text() for n in names} == now


def test_rollback_and_drift_through_the_api(setup: Setup) -> None:
    """Rollback re-renders an earlier commit on the fleet; a hand edit then shows up as drift."""
    names = [n for n, _ in setup.hosts]
    first, _ = setup.push({"hosts/web.yaml": setup.hosts_yaml(), "templates/app.conf.j2": TEMPLATE,
                           "sync.yaml": setup.manifest()}, "v1")
    setup.wait_sync(first)
    second, _ = setup.push({"hosts/web.yaml": setup.hosts_yaml(**{n: {"workers": 8} for n in names})}, "v2")
    setup.wait_sync(second)
    assert "workers=8" in setup.file(names[0]).read_text()
    r = setup.http.post("/api/v1/gitops/rollback", json={"to": first[:12], "wait": True})
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["kind"] == "rollback" and record["commit"] == first and record["status"] == "success"
    assert all(setup.file(n).read_text() == f"# {first[:10]} v1\nname={n} workers=2\n" for n in names)
    setup.file(names[2]).write_text("edited by hand\n")
    drift = setup.http.post("/api/v1/gitops/drift").json()
    assert drift["status"] == "failed" and statuses(drift)[names[2]] == "drifted"
    assert {statuses(drift)[n] for n in names[:2]} == {"unchanged"}
    status = setup.http.get("/api/v1/gitops/status").json()
    assert status["last_sync"]["kind"] == "rollback" and status["last_drift"]["id"] == drift["id"]


def test_webhook_signatures_and_branches(setup: Setup) -> None:
    """Wrong or missing signatures are 401; other branches are ignored; GitLab and Gitea formats are accepted."""
    url = f"{setup.server.url}/api/v1/gitops/webhook"
    sha, _ = setup.push({"hosts/web.yaml": setup.hosts_yaml(), "templates/app.conf.j2": TEMPLATE,
                         "sync.yaml": setup.manifest()}, "first")
    first = setup.wait_sync(sha)
    assert first["status"] == "success", (first["reason"], first["hosts"])
    body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
    for headers in ({"X-GitHub-Event": "push"},
                    {"X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign_github("wrong", body)},
                    {"X-Gitea-Event": "push", "X-Gitea-Signature": "0" * 64},
                    {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}):
        r = httpx.post(url, content=body, headers=headers)
        assert r.status_code == 401, r.text
    assert "webhook" in setup.server.output() and "refused" in setup.server.output()
    gitlab = httpx.post(url, content=body, headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET})
    assert gitlab.status_code == 200 and gitlab.json()["status"] == "duplicate"  # that commit is synced already
    feature, hook_out = setup.push({"templates/app.conf.j2": "feature\n"}, "on a branch", branch="feature")
    assert "ignored" in hook_out
    body = json.dumps({"ref": "refs/heads/main", "after": feature}).encode()
    r = httpx.post(url, content=body, headers={"X-Gitea-Event": "push", "X-Gitea-Signature": webhook.sign_gitea(SECRET, body)})
    assert r.status_code == 202, r.text  # signed, so accepted; but that commit is not on main
    record = setup.wait_sync(feature)
    assert record["status"] == "error" and "is not on branch main" in record["reason"]
    assert all(setup.file(n).read_text() != "feature\n" for n, _ in setup.hosts)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops-repo"


def example_files(setup: Setup) -> dict[str, str]:
    """examples/gitops-repo as it is, its three hosts pointed at the test fleet and its folder at the test's."""
    files = {p.relative_to(EXAMPLE).as_posix(): p.read_text() for p in EXAMPLE.rglob("*") if p.is_file()}
    for i, (_, address) in enumerate(setup.hosts[:3], 1):
        for name in ("hosts/web.yaml", "hosts/db.yaml"):
            files[name] = re.sub(rf"address: 127\.0\.1\.{i}\b", f"address: {address}", files[name])
    for name in ("hosts/web.yaml", "hosts/db.yaml"):
        files[name] = files[name].replace("port: 2222", f"port: {setup.fleet.port}")
    files["hosts/demo.yaml"] = files["hosts/demo.yaml"].replace("root: /tmp/small-yi-demo", f"root: {setup.root}")
    return files


def test_the_example_repositorys_go_templates_reach_the_fleet(setup: Setup) -> None:
    """The example repository (templates/nginx.conf.tmpl with {{ .worker_processes }}, as the original
    writes it) pushed to a real repository is rendered and written to the fleet's hosts over SFTP; a typo
    in a .tmpl then stops the next sync before any host is touched, naming the template, line and host."""
    files = example_files(setup)
    sha, hook_out = setup.push(files, "the example repository")
    assert "small-yi: 202" in hook_out
    record = setup.wait_sync(sha)
    assert record["status"] == "success", (record["reason"], record["hosts"])
    short = sha[:10]
    nginx = {n: (setup.root / n / "etc/nginx/nginx.conf").read_text() for n in ("web-01", "web-02")}
    assert nginx["web-02"].startswith(f"# Managed by small-yi from commit {short} (Ann Ops): edit it in Git, "
                                      "not here.\nworker_processes 4;\n")
    assert "worker_processes 2;\n" in nginx["web-01"] and "server_name web-01.demo.internal;" in nginx["web-01"]
    assert "        server 127.0.0.1:9001;\n        server 127.0.0.1:9002;\n" in nginx["web-01"]
    assert all((setup.root / n / "etc/nginx/reloaded").exists() for n in ("web-01", "web-02"))
    pg = (setup.root / "db-01/etc/postgresql/postgresql.conf").read_text()
    assert pg.endswith(f"listen_addresses = '{setup.hosts[2][1]}'\nmax_connections = 200\nshared_buffers = 256MB\n")
    assert (setup.root / "web-01/etc/motd").read_text().startswith("web-01 (web, demo)")  # the .j2 beside them
    before = {p: p.read_text() for p in setup.root.rglob("*") if p.is_file()}
    typo = files["templates/nginx.conf.tmpl"].replace(".worker_processes", ".worker_procesess")
    sha2, _ = setup.push({"templates/nginx.conf.tmpl": typo}, "a typo")
    broken = setup.wait_sync(sha2)
    assert broken["status"] == "error"
    assert "templates/nginx.conf.tmpl, line 2, host web-01: no value for .worker_procesess (did you mean " \
        ".worker_processes?)" in broken["reason"]
    assert {p: p.read_text() for p in setup.root.rglob("*") if p.is_file()} == before


def test_cli_plan_apply_history_drift_rollback(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """`small-yi sync` plans, applies, lists, checks drift and rolls back in-process, with JSON output."""
    from support import cli

    root = Path(f"/tmp/small-yi-gitops-cli-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    root.chmod(0o777)
    try:
        bare, work = tmp_path / "origin.git", tmp_path / "work"
        git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
        git("clone", "-q", str(bare), str(work), cwd=tmp_path)
        git("checkout", "-q", "-b", "main", cwd=work)
        (name, address), = ssh_fleet.hosts[:1]
        (work / "hosts").mkdir()
        (work / "templates").mkdir()
        (work / "hosts/h.yaml").write_text(f"group: g\nvars: {{v: 1}}\nhosts:\n  - name: {name}\n    address: {address}\n"
                                           f"    port: {ssh_fleet.port}\n    user: {ssh_fleet.user}\n")
        (work / "templates/t.tmpl").write_text("v={{ .v }}\n")  # a Go template, as the original writes them
        (work / "sync.yaml").write_text(f"files:\n  - template: t.tmpl\n    path: {root}/t.conf\n    target: {{group: g}}\n")
        for msg in ("v1",):
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", msg, cwd=work)
            git("push", "-q", "origin", "HEAD:main", cwd=work)
        v1 = git("rev-parse", "HEAD", cwd=work)
        config = write_config(tmp_path, extra=ssh_fleet.ssh_yaml() + f"gitops:\n  repo: {bare}\n  branch: main\n")
        plan = cli("sync", "plan", "--output", "json", config=config)
        assert plan.returncode == 0, plan.stderr
        assert json.loads(plan.stdout)["counts"]["files"] == {"changed": 1} and not (root / "t.conf").exists()
        applied = cli("sync", "apply", config=config)
        assert applied.returncode == 0, applied.stderr
        assert f"[{name}] changed {root}/t.conf" in applied.stdout and (root / "t.conf").read_text() == "v=1\n"
        (work / "hosts/h.yaml").write_text((work / "hosts/h.yaml").read_text().replace("v: 1", "v: 2"))
        git("commit", "-qam", "v2", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        assert cli("sync", "apply", config=config).returncode == 0 and (root / "t.conf").read_text() == "v=2\n"
        (root / "t.conf").write_text("hand edit\n")
        drift = cli("sync", "drift", config=config)
        assert drift.returncode == 1 and f"[{name}] drifted" in drift.stdout
        back = cli("sync", "rollback", "--to", v1[:10], "--output", "json", config=config)
        assert back.returncode == 0, back.stderr
        assert json.loads(back.stdout)["kind"] == "rollback" and (root / "t.conf").read_text() == "v=1\n"
        history = json.loads(cli("sync", "history", "--output", "json", config=config).stdout)
        assert [r["kind"] for r in history["items"]] == ["rollback", "drift", "sync", "sync"]
        bad = cli("sync", "rollback", "--to", "not/../a-commit", config=config)
        assert bad.returncode == 2 and "is not a commit id" in bad.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)
