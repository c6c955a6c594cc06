"""SOPs, approvals and schedules in the console, in a real browser against a real server and the OpenSSH
fleet: write and run a SOP and watch its steps finish live (and after a reload), approve a waiting step
and see the run go on, make a schedule and see its next fire time in its own time zone."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from browser import WEB_HOSTS, Console, hold_replies, shot
from playwright.sync_api import Browser, Page, expect

from smallyi.testing import Fleet
from support import ADMIN_HASH, ADMIN_PASSWORD, cli, start_server, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]

USERS = "auth:\n  users:\n" + "".join(
    f"    - username: {u}\n      password_hash: \"{ADMIN_HASH}\"\n      role: {r}\n"
    for u, r in (("admin", "admin"), ("bob", "operator"), ("vic", "viewer")))

BAD = """\
name: web-check
steps:
  - id: uptime
    type: exec
  - id: later
    type: exec
    cmd: "echo {{ .steps.nope.output }}"
    needs: [ghost]
"""

SOP = """\
name: web-check
description: uptime and disk in parallel, a slow step, then a verdict
target: {group: web}
vars: {pause: "2"}
steps:
  - id: uptime
    type: exec
    cmd: "uptime"
  - id: slow
    type: exec
    needs: [uptime]
    cmd: "echo going; sleep {{ .vars.pause }}; echo slept"
  - id: disk
    type: exec
    needs: [uptime]
    cmd: "df -P / | tail -1"
    outputs: {lines: "{{ .output | lines | len }}"}
  - id: verdict
    type: if
    needs: [slow, disk]
    condition: "{{ .steps.disk.output | contains '100%' }}"
    then: {action: fail, message: "a root disk is full"}
"""

GATED = """\
name: gated-restart
target: {group: web}
steps:
  - {id: before, type: exec, cmd: "echo before"}
  - {id: go_ahead, type: approval, message: "restart the web tier?"}
  - {id: after, type: exec, cmd: "echo approved by {{ .steps.go_ahead.decided_by }}"}
"""


@pytest.fixture(scope="module")
def sopconsole(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[Console]:
    """A server with an admin, an operator (bob) and a viewer (vic); the first fleet hosts in group web."""
    folder = tmp_path_factory.mktemp("sop")
    policy = 'policy:\n  rules:\n    - name: restarts\n      approve: ["systemctl restart *"]\n      roles: [operator]\n'
    cfg = write_config(folder, extra=ssh_fleet.ssh_yaml() + policy, users=USERS)
    lines = ["group: web", "hosts:"]
    for name, addr in ssh_fleet.hosts[:WEB_HOSTS]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {ssh_fleet.port}"]
    (folder / "inventory.yaml").write_text("\n".join(lines) + "\n")
    r = cli("hosts", "import", str(folder / "inventory.yaml"), config=cfg)
    assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    yield Console("direct", srv.url + "/", srv)
    srv.stop()


def login_as(page: Page, console: Console, user: str) -> None:
    page.goto(console.url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#whoami")


def step_status(page: Page, step: str) -> str:
    return str(page.locator(f"#steps-body tr[data-step='{step}']").get_attribute("data-status"))


def test_write_validate_save_and_run_a_sop_live(page: Page, console: Console) -> None:
    """A SOP written in the console is refused with its problems, saved once valid, dry-run, then run: the
    steps move from pending to running to success live, and a reload mid-run shows every event once.
    Directly and through nginx on a path prefix with TLS (the run's and the task's streams are WebSockets)."""
    login_as(page, console, "admin")
    page.click("nav a[data-nav='sops']")
    page.click("#new-sop")
    expect(page.locator(".top .title")).to_have_text("New SOP")
    page.fill("#sop-name", "web-check")
    page.fill("#sop-yaml", BAD)
    page.click("#sop-save")
    expect(page.locator("#sop-verdict")).to_contain_text("nothing is saved")
    problems = page.locator("#sop-problems li")
    expect(problems.first).to_be_visible()
    text = " ".join(problems.all_inner_texts())
    assert "line 3 · step uptime · cmd" in text and "ghost" in text and "warning" in text
    page.fill("#sop-yaml", SOP)
    page.click("#sop-validate")
    expect(page.locator("#sop-verdict")).to_contain_text("Valid: 4 steps in 3 waves")
    expect(page.locator("#sop-plan .wave")).to_have_count(3)
    expect(page.locator("#sop-plan .wave").nth(1).locator(".plan-step")).to_have_count(2)
    page.click("#sop-save")
    page.wait_for_url(re.compile(r"#/sops/web-check$"))
    expect(page.locator("#sop-plan .plan-step[data-step='verdict']")).to_contain_text("after slow, disk")
    if console.mode == "direct":
        shot(page, "sop")
    # dry run: where each step would run, nothing recorded
    page.click("#run-dry")
    # the command as it would be sent: the value pinned on its first line, referenced in the text
    slow = page.locator("#dry-run tr[data-step='slow']")
    expect(slow).to_contain_text("export SY_V_pause='2'; readonly SY_V_pause")
    expect(slow).to_contain_text('sleep "${SY_V_pause}"; echo slept')
    expect(page.locator("#dry-run tr[data-step='uptime']")).to_contain_text(f"{WEB_HOSTS} hosts")
    if console.mode == "direct":
        shot(page, "sop-dry-run")
    with console.api() as c:
        assert c.get("/api/v1/sop-runs").json()["total"] == 0
    # the run, live
    page.fill("input[data-var='pause']", "3")
    page.click("#run-start")
    page.wait_for_url(re.compile(r"#/sop-runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#run-started-by")).to_contain_text("admin")
    expect(page.locator("#steps-body tr[data-step='slow']")).to_have_attribute("data-status", "running", timeout=20_000)
    assert step_status(page, "verdict") == "pending"
    assert step_status(page, "uptime") == "success"
    # open the running step: its task's output streams under it
    page.locator("#steps-body tr[data-step='slow']").click()
    expect(page.locator("tr[data-detail='slow'] .step-live")).to_contain_text("] going")
    if console.mode == "direct":
        shot(page, "sop-run")
    page.reload()
    expect(page.locator("#run-status .badge")).to_have_text("success", timeout=30_000)
    for step in ("uptime", "slow", "disk", "verdict"):
        expect(page.locator(f"#steps-body tr[data-step='{step}']")).to_have_attribute("data-status", "success")
    seqs = [int(x) for x in page.locator("#run-events .ev").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 8
    expect(page.locator("#run-events .ev[data-kind='run.finish']")).to_have_count(1)
    # a step's result: every host's output, and its tasks in the task center
    page.locator("#steps-body tr[data-step='slow']").click()
    expect(page.locator("tr[data-detail='slow']")).to_contain_text("slept")
    expect(page.locator("tr[data-detail='slow'] tr[data-host]")).to_have_count(WEB_HOSTS)
    with console.api() as c:
        run = c.get(f"/api/v1/sop-runs/{run_id}").json()
    assert run["vars"] == {"pause": "3"} and run["status"] == "success"
    page.goto(console.url + "#/sops")
    expect(page.locator("#sops-body tr[data-sop='web-check'] [data-last-run]")).to_have_attribute("data-last-run", "success")
    if console.mode == "direct":
        shot(page, "sops")
    page.goto(console.url + "#/sop-runs")
    expect(page.locator(f"#runs-list tr[data-run='{run_id}']")).to_contain_text("web-check")
    if console.mode == "direct":
        shot(page, "sop-runs")


WAITS = """\
name: waits
steps:
""" + "".join(f"  - {{id: w{i}, type: wait, duration: 0.7}}\n" for i in range(1, 7))


def test_a_dropped_connection_resumes_the_run_with_no_event_missing(page: Page, sopconsole: Console) -> None:
    """When the run's event stream drops mid-run, the page reconnects from the last event it saw and shows
    every event exactly once, every step finished."""
    routes: list[object] = []

    def through(ws: object) -> None:
        ws.connect_to_server()  # type: ignore[attr-defined]
        routes.append(ws)

    page.route_web_socket(re.compile(r".*/sop-runs/\d+/stream\?after=\d+$"), through)
    with sopconsole.api() as c:
        c.put("/api/v1/sops/waits", json={"source": WAITS}).raise_for_status()
        run_id = c.post("/api/v1/sops/waits/runs", json={}).json()["id"]
    login_as(page, sopconsole, "admin")
    page.goto(sopconsole.url + f"#/sop-runs/{run_id}")
    expect(page.locator("#steps-body tr[data-step='w2']")).to_have_attribute("data-status", "success", timeout=20_000)
    routes[-1].close(code=1006)  # type: ignore[attr-defined]
    expect(page.locator("#run-conn")).to_have_attribute("data-state", "retrying")
    expect(page.locator("#run-status .badge")).to_have_text("success", timeout=30_000)
    assert len(routes) >= 2
    seqs = [int(x) for x in page.locator("#run-events .ev").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == list(range(1, len(seqs) + 1))
    expect(page.locator("#run-events .ev[data-kind='step.finish']")).to_have_count(6)
    expect(page.locator("#steps-body tr[data-status='success']")).to_have_count(6)


def test_approve_a_waiting_step_and_the_run_goes_on(browser: Browser, page: Page, sopconsole: Console) -> None:
    """bob's run waits for approval: the nav shows it pending; a viewer sees the buttons disabled (and no
    buttons to change or run SOPs or schedules); admin approves with a comment and the run goes on to the end."""
    with sopconsole.api() as c:
        c.put("/api/v1/sops/gated-restart", json={"source": GATED}).raise_for_status()
    with sopconsole.server.client(sopconsole.server.login("bob")) as bob:
        r = bob.post("/api/v1/sops/gated-restart/runs", json={})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        deadline = time.monotonic() + 30
        while bob.get(f"/api/v1/sop-runs/{run_id}").json()["steps"][1]["status"] != "waiting":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # a viewer sees it, cannot decide
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        vic = ctx.new_page()
        login_as(vic, sopconsole, "vic")
        vic.goto(sopconsole.url + "#/approvals")
        row = vic.locator(f"#approvals-body tr[data-approval='{run_id}/go_ahead']")
        expect(row.locator("button[data-approve]")).to_be_disabled()
        expect(row).to_contain_text("cannot decide")
        # nor change or run SOPs, nor change schedules: those buttons are not there
        vic.goto(sopconsole.url + "#/sops/gated-restart")
        expect(vic.locator("#sop-plan .plan-step")).to_have_count(3)
        expect(vic.locator("#sop-yaml")).to_have_attribute("readonly", "")
        expect(vic.locator("#sop-save")).to_have_count(0)
        expect(vic.locator("#run-card")).to_have_count(0)
        vic.goto(sopconsole.url + "#/schedules")
        expect(vic.locator("#schedules-table")).to_be_visible()
        expect(vic.locator("#new-schedule")).to_have_count(0)
    finally:
        ctx.close()
    login_as(page, sopconsole, "admin")
    expect(page.locator("#approvals-count")).to_have_text("1")
    page.click("nav a[data-nav='approvals']")
    row = page.locator(f"#approvals-body tr[data-approval='{run_id}/go_ahead']")
    expect(row).to_contain_text("restart the web tier?")
    expect(row).to_contain_text("bob")
    row.locator("input[data-comment]").fill("graphs look fine")
    shot(page, "approvals")
    row.locator("button[data-approve]").click()
    expect(page.locator("#approvals-empty")).to_be_visible()
    expect(page.locator("#approvals-count")).to_be_hidden()
    page.goto(sopconsole.url + f"#/sop-runs/{run_id}")
    expect(page.locator("#run-status .badge")).to_have_text("success", timeout=30_000)
    expect(page.locator("#steps-body tr[data-step='after']")).to_have_attribute("data-status", "success")
    page.locator("#steps-body tr[data-step='go_ahead']").click()
    expect(page.locator("tr[data-detail='go_ahead']")).to_contain_text("graphs look fine")
    page.locator("#steps-body tr[data-step='after']").click()
    expect(page.locator("tr[data-detail='after']")).to_contain_text("approved by admin")


def test_approve_from_the_run_page_while_following_it(page: Page, sopconsole: Console) -> None:
    """On the run page a waiting step has approve / reject; rejecting with a comment fails the run live."""
    with sopconsole.api() as c:
        c.put("/api/v1/sops/gated-restart", json={"source": GATED}).raise_for_status()
    with sopconsole.server.client(sopconsole.server.login("bob")) as bob:
        run_id = bob.post("/api/v1/sops/gated-restart/runs", json={}).json()["id"]
    login_as(page, sopconsole, "admin")
    page.goto(sopconsole.url + f"#/sop-runs/{run_id}")
    box = page.locator("#run-approvals [data-approval='go_ahead']")
    expect(box).to_be_visible(timeout=20_000)
    expect(page.locator("#steps-body tr[data-step='go_ahead']")).to_have_attribute("data-status", "waiting")
    box.locator("input[data-comment]").fill("not during the sale")
    box.locator("button[data-reject]").click()
    expect(page.locator("#run-status .badge")).to_have_text("failed", timeout=20_000)
    expect(page.locator("#steps-body tr[data-step='after']")).to_have_attribute("data-status", "skipped")


def test_a_command_held_by_the_policy_is_approved_in_the_console(page: Page, sopconsole: Console) -> None:
    """bob's command matching an `approve` rule is held (the run form says so); admin approves it on the
    approvals page and the task it becomes is linked."""
    login_as(page, sopconsole, "bob")
    page.goto(sopconsole.url + "#/run")
    page.select_option("#run-group", "web")
    page.fill("#run-cmd", "systemctl restart nginx")
    page.click("#run-submit")
    expect(page.locator("#run-held")).to_contain_text("approv")
    page.click("#logout")
    login_as(page, sopconsole, "admin")
    expect(page.locator("#approvals-count")).not_to_be_hidden()
    page.click("nav a[data-nav='approvals']")
    row = page.locator("#command-approvals-table tr[data-status='pending']", has_text="systemctl restart nginx")
    expect(row).to_contain_text("bob")
    expect(row).to_contain_text("restarts")
    row.locator("button[data-approve]").click()
    expect(page.locator("#command-approvals-empty")).to_be_visible()
    page.select_option("#appr-status", "approved")
    done = page.locator("#command-approvals-table tr[data-status='approved']", has_text="systemctl restart nginx")
    expect(done.locator("a[href^='#/tasks/']")).to_be_visible()


def test_schedule_is_listed_with_its_next_fire_in_its_time_zone(page: Page, sopconsole: Console) -> None:
    """A schedule made in the console is listed with its next fire time shown in its time zone; it pauses,
    resumes, edits and deletes; a SOP schedule names its SOP."""
    login_as(page, sopconsole, "admin")
    page.click("nav a[data-nav='schedules']")
    page.click("#new-schedule")
    page.fill("#sch-name", "disk-check")
    page.fill("#sch-cron", "*/30 * * * *")
    page.fill("#sch-tz", "Asia/Shanghai")
    page.fill("#sch-command", "df -h /")
    page.select_option("#sch-group", "web")
    page.fill("#sch-timeout", "30s")
    page.click("#sch-save")
    row = page.locator("#schedules-body tr[data-schedule='disk-check']")
    expect(row).to_contain_text("*/30 * * * *")
    expect(row).to_contain_text("Asia/Shanghai")
    with sopconsole.api() as c:
        s = c.get("/api/v1/schedules/disk-check").json()
    nxt = datetime.fromisoformat(s["next_slot"].replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Shanghai"))
    assert nxt.minute in (0, 30)
    expect(row.locator("[data-next]")).to_contain_text(nxt.strftime("%Y-%m-%d %H:%M"))
    # a bad cron is refused, naming the field
    page.click("#new-schedule")
    page.fill("#sch-name", "broken")
    page.fill("#sch-cron", "* * *")
    page.fill("#sch-command", "true")
    page.select_option("#sch-group", "web")
    page.click("#sch-save")
    expect(page.locator("#sch-error")).to_contain_text("cron")
    page.keyboard.press("Escape")
    # a SOP schedule
    with sopconsole.api() as c:
        c.put("/api/v1/sops/web-check", json={"source": SOP}).raise_for_status()
    page.reload()
    page.click("#new-schedule")
    page.fill("#sch-name", "nightly-check")
    page.fill("#sch-cron", "0 3 * * *")
    page.fill("#sch-tz", "Europe/Berlin")
    page.select_option("#sch-kind", "sop")
    page.select_option("#sch-sop", "web-check")
    page.fill("#sch-vars", "pause=1")
    page.select_option("#sch-missed", "run_once")
    page.click("#sch-save")
    sop_row = page.locator("#schedules-body tr[data-schedule='nightly-check']")
    expect(sop_row).to_contain_text("web-check")
    expect(sop_row.locator("[data-next]")).to_contain_text("03:00")
    # pause and resume
    row.locator("input[type=checkbox]").uncheck()
    expect(row).to_have_attribute("data-enabled", "0")
    expect(row.locator("[data-next]")).to_contain_text("paused")
    row.locator("input[type=checkbox]").check()
    expect(row).to_have_attribute("data-enabled", "1")
    # edit: every 10 minutes now
    row.locator("button", has_text="Edit").click()
    page.fill("#sch-cron", "@every 10m")
    page.click("#sch-save")
    expect(row).to_contain_text("@every 10m")
    page.once("dialog", lambda d: d.accept())
    sop_row.locator("button", has_text="Delete").click()
    expect(sop_row).to_have_count(0)
    with sopconsole.api() as c:
        names = [x["name"] for x in c.get("/api/v1/schedules").json()["items"]]
    assert names == ["disk-check"]
    # in Simplified Chinese
    page.select_option("#lang-select", "zh-CN")
    expect(page.locator(".top h1")).to_have_text("定时任务")
    expect(page.locator("#schedules-table thead")).to_contain_text("下次触发")
    expect(page.locator("nav a[data-nav='sops']")).to_have_text("SOP")
    shot(page, "schedules-zh")
    page.select_option("#lang-select", "en")
    expect(page.locator(".top h1")).to_have_text("Schedules")


def test_every_fire_shows_its_last_result(page: Page, sopconsole: Console) -> None:
    """A schedule every few seconds fires while the page is open; its last result links to the task."""
    with sopconsole.api() as c:
        r = c.post("/api/v1/schedules", json={"name": "tick", "cron": "@every 5s", "kind": "command",
                                              "command": "echo tick", "target": {"group": "web"}})
        assert r.status_code == 201, r.text
        c.post("/api/v1/schedules", json={"name": "nightly-check", "cron": "0 3 * * *", "timezone": "Europe/Berlin",
                                          "kind": "sop", "sop_name": "web-check", "missed": "run_once"})
    login_as(page, sopconsole, "admin")
    page.goto(sopconsole.url + "#/schedules")
    row = page.locator("#schedules-body tr[data-schedule='tick']")
    expect(row.locator("a[href^='#/tasks/']")).to_be_visible(timeout=40_000)
    shot(page, "schedules")
    row.locator("button", has_text="Fires").click()
    expect(page.locator("#fires-table tbody tr").first).to_be_visible()
    with sopconsole.api() as c:
        c.patch("/api/v1/schedules/tick", json={"enabled": False})


def test_a_status_reply_delivered_late_does_not_undo_the_runs_end(page: Page, sopconsole: Console) -> None:
    """The run page polls the run while it goes on and asks again at its end. If a reply sent while it ran
    arrives after the newer one, the page keeps the newer state instead of showing the run running again."""
    with sopconsole.api() as c:
        c.put("/api/v1/sops/slow", json={"source": "name: slow\nsteps:\n  - {id: w, type: wait, duration: 7}\n"}
              ).raise_for_status()
        run_id = c.post("/api/v1/sops/slow/runs", json={}).json()["id"]
    held = hold_replies(page, f"/api/v1/sop-runs/{run_id}")
    login_as(page, sopconsole, "admin")
    page.goto(sopconsole.url + f"#/sop-runs/{run_id}")
    expect(page.locator("#run-status .badge")).to_have_text("running")
    expect(page.locator("#run-conn")).to_have_attribute("data-state", "ended", timeout=30_000)
    deadline = time.monotonic() + 10
    while not any(resp.json()["status"] == "success" for _, resp in held) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert [resp.json()["status"] for _, resp in held][:1] == ["running"], "no poll went out while the run ran"
    assert held[-1][1].json()["status"] == "success", "the page did not ask again at the run's end"
    for route, resp in reversed(held):
        route.fulfill(response=resp)
    page.wait_for_timeout(1000)
    expect(page.locator("#run-status .badge")).to_have_text("success")
    page.unroute_all()
