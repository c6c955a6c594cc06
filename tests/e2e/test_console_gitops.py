"""The GitOps page in a real browser against a real server, a real bare git repository and one OpenSSH
fleet host: status and commits, a plan with its diff, a sync that writes the file, a rollback to the
first commit from the page, a viewer without the write buttons, and a hostile commit message shown as text."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser import Console, shot
from playwright.sync_api import Page, expect

from smallyi.testing import Fleet
from support import ADMIN_HASH, ADMIN_PASSWORD, start_server, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]

USERS = "auth:\n  users:\n" + "".join(
    f"    - username: {u}\n      password_hash: \"{ADMIN_HASH}\"\n      role: {r}\n"
    for u, r in (("admin", "admin"), ("vic", "viewer")))
XSS = "<img src=x onerror=alert(1)>"


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ann Ops", "GIT_AUTHOR_EMAIL": "ann@example.com",
           "GIT_COMMITTER_NAME": "Ann Ops", "GIT_COMMITTER_EMAIL": "ann@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Setup:
    console: Console
    work: Path
    root: Path
    host: str
    address: str
    user: str

    def push(self, files: dict[str, str], message: str) -> str:
        for path, text in files.items():
            p = self.work / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD:main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def at_least_one_commit(self) -> None:
        """For the tests that only look at the page: a commit to list, whichever test runs first."""
        if subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=self.work,
                          capture_output=True).returncode != 0:
            self.push({"README.md": "config for the console tests\n"}, "a commit to list")

    @property
    def file(self) -> Path:
        return self.root / self.host / "app.conf"


@pytest.fixture(scope="module")
def gitops(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("gitops")
    root = Path(f"/tmp/small-yi-gitops-e2e-{uuid.uuid4().hex[:8]}")
    root.mkdir(mode=0o777)
    root.chmod(0o777)  # the fleet's login user writes here
    bare, work = tmp / "origin.git", tmp / "work"
    git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=tmp)
    git("clone", "-q", str(bare), str(work), cwd=tmp)
    git("checkout", "-q", "-b", "main", cwd=work)
    cfg = write_config(tmp, users=USERS, extra=ssh_fleet.ssh_yaml() + f"gitops:\n  repo: {bare}\n  branch: main\n"
                       "  timeout: 20s\n  drift_interval: 0s\n")
    srv = start_server(cfg)
    name, address = ssh_fleet.hosts[0]
    yield Setup(Console("direct", srv.url + "/", srv), work, root, name, address, ssh_fleet.user)
    srv.stop()
    shutil.rmtree(root, ignore_errors=True)


def hosts_yaml(s: Setup, port: int) -> str:
    return f"group: web\nvars:\n  workers: 2\nhosts:\n  - name: {s.host}\n    address: {s.address}\n    port: {port}\n    user: {s.user}\n"


def manifest(s: Setup) -> str:
    return textwrap.dedent(f"""\
        files:
          - template: app.conf.j2
            path: "{s.root}/{{{{ host.name }}}}/app.conf"
            target: {{group: web}}
            mode: "0644"
            mkdir: true
        """)


def login_as(page: Page, console: Console, user: str) -> None:
    page.goto(console.url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#whoami")


def wait_done(page: Page) -> str:
    expect(page.locator("#sync-status")).not_to_have_attribute("data-status", "running", timeout=60_000)
    expect(page.locator("#sync-status")).not_to_have_attribute("data-status", "queued", timeout=60_000)
    return str(page.locator("#sync-status").get_attribute("data-status"))


def test_plan_sync_rollback_and_viewer(page: Page, gitops: Setup, ssh_fleet: Fleet) -> None:
    s = gitops
    first = s.push({"hosts/web.yaml": hosts_yaml(s, ssh_fleet.port), "templates/app.conf.j2": "workers={{ workers }}\n",
                    "sync.yaml": manifest(s)}, XSS)
    page.on("dialog", lambda d: d.accept())  # the confirm() before sync and rollback
    login_as(page, s.console, "admin")
    page.click("nav a[data-nav=gitops]")
    expect(page.locator("#gitops-branch")).to_have_text("main")
    row = page.locator(f"#gitops-commits-table tr[data-commit='{first}']")
    # the hostile message is text, not an element
    expect(row.locator(".commit-message")).to_have_text(XSS)
    assert page.locator("#gitops-commits img").count() == 0

    # plan: a diff, nothing written
    row.locator("[data-plan]").click()
    expect(page.locator(f"#plan-hosts [data-host='{s.host}']")).to_have_attribute("data-status", "changed")
    expect(page.locator("#plan-hosts pre.diff")).to_contain_text("+workers=2")
    shot(page, "gitops-plan")
    assert not s.file.exists()
    page.keyboard.press("Escape")

    # sync the head from the page
    row.locator(f"[data-sync='{first}']").click()
    page.wait_for_url("**#/gitops/syncs/*")
    assert wait_done(page) == "success"
    expect(page.locator(f"#sync-host-list [data-host='{s.host}']")).to_have_attribute("data-status", "changed")
    expect(page.locator("#sync-host-list pre.diff")).to_contain_text("+workers=2")
    expect(page.locator("#sync-status .commit-message")).to_have_text(XSS)
    assert s.file.read_text() == "workers=2\n"

    # a second commit, synced; then roll back to the first from the page
    second = s.push({"hosts/web.yaml": hosts_yaml(s, ssh_fleet.port).replace("workers: 2", "workers: 5")}, "five workers")
    page.goto(s.console.url + "#/gitops")
    page.locator(f"[data-sync='{second}']").click()
    page.wait_for_url("**#/gitops/syncs/*")
    assert wait_done(page) == "success"
    assert s.file.read_text() == "workers=5\n"
    page.goto(s.console.url + "#/gitops")
    expect(page.locator("#gitops-last")).to_contain_text(second[:10])
    page.locator(f"[data-rollback='{first}']").click()
    page.wait_for_url("**#/gitops/syncs/*")
    assert wait_done(page) == "success"
    expect(page.locator(f"#sync-host-list [data-host='{s.host}']")).to_have_attribute("data-status", "changed")
    expect(page.locator("#sync-host-list pre.diff")).to_contain_text("+workers=2")
    assert s.file.read_text() == "workers=2\n"
    shot(page, "gitops-sync")

    # drift check: nothing drifted
    page.goto(s.console.url + "#/gitops")
    page.click("#gitops-drift-check")
    expect(page.locator("#drift-result")).to_have_attribute("data-status", "success")
    expect(page.locator("#gitops-syncs tr[data-sync-id]").first).to_be_visible()
    shot(page, "gitops")


def test_viewer_gets_no_write_buttons(page: Page, gitops: Setup) -> None:
    """A viewer plans but gets no sync, rollback or drift buttons."""
    gitops.at_least_one_commit()
    login_as(page, gitops.console, "vic")
    page.goto(gitops.console.url + "#/gitops")
    expect(page.locator("#gitops-commits-table [data-plan]").first).to_be_visible()
    assert page.locator("[data-sync], [data-rollback], #gitops-drift-check").count() == 0


def test_chinese_strings(page: Page, gitops: Setup) -> None:
    """The page in Simplified Chinese: its headings and buttons are translated."""
    gitops.at_least_one_commit()
    login_as(page, gitops.console, "admin")
    page.select_option("#lang-select", "zh-CN")
    page.goto(gitops.console.url + "#/gitops")
    expect(page.locator("nav a[data-nav=gitops]")).to_have_text("GitOps")
    expect(page.locator("#gitops-drift-check")).to_have_text("立即检查漂移")
    expect(page.locator("#gitops-commits-table [data-plan]").first).to_have_text("计划")
    page.select_option("#lang-select", "en")


def test_gitops_off_says_so(page: Page, direct: Console) -> None:
    """A server without gitops.repo: the page says GitOps is off and how to turn it on."""
    login_as(page, direct, "admin")
    page.goto(direct.url + "#/gitops")
    expect(page.locator("#gitops-off")).to_contain_text("gitops.repo")
    assert page.locator("#gitops-commits").count() == 0
