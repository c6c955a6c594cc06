"""The console in a real browser, against a real server and real fleet hosts: directly and through nginx
(TLS, path prefix /small-yi, WebSockets proxied). Each test states the behaviour a user relies on."""

from __future__ import annotations

import re
import time

import pytest
from browser import WEB_HOSTS, Console, by_host, login, shot, stream_lines
from playwright.sync_api import Page, expect

from smallyi.testing import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]


def run_from_form(page: Page, console: Console, cmd: str, *, group: str = "web", timeout: str = "60s") -> int:
    """Fill the task form (waiting for the live host count) and submit it; returns the new task's id."""
    page.goto(console.url + "#/run")
    page.select_option("#run-group", group)
    expect(page.locator("#match-number")).to_have_text(str(WEB_HOSTS) if group == "web" else re.compile(r"\d+"))
    page.fill("#run-cmd", cmd)
    page.fill("#run-timeout", timeout)
    page.click("#run-submit")
    page.wait_for_url(re.compile(r"#/tasks/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def web_hosts(console: Console) -> list[str]:
    with console.api() as c:
        return sorted(h["name"] for h in c.post("/api/v1/targets/resolve", json={"group": "web"}).json()["items"])


def test_login_shows_user_and_role_and_logout_returns_to_the_form(page: Page, console: Console) -> None:
    """Logging in shows the user's name and role; logging out returns to the login form and ends the session."""
    page.goto(console.url)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong username or password")
    shot(page, f"login-{console.mode}")
    login(page, console)
    expect(page.locator("#whoami")).to_have_text("admin")
    expect(page.locator("#role")).to_have_text("admin")
    expect(page.locator("#dash-host-total")).to_have_text(str(WEB_HOSTS + 1))  # the fleet hosts and `local`
    shot(page, f"dashboard-{console.mode}")
    page.click("#logout")
    expect(page.locator("input[name=password]")).to_be_visible()
    page.reload()
    expect(page.locator("input[name=password]")).to_be_visible()


def test_a_group_run_shows_lines_from_every_host_live(page: Page, console: Console) -> None:
    """Lines from every host of the group appear while the task still runs, prefixed [host]; counters end at success."""
    login(page, console)
    task = run_from_form(page, console, 'for i in 1 2 3 4; do echo "tick $i"; sleep 1; done')
    hosts = web_hosts(console)
    # every host's first line is on screen while the task is still running: the output is live
    page.wait_for_function(
        """(n) => new Set([...document.querySelectorAll('#stream .ln .h')].map(e => e.textContent)).size >= n""",
        arg=WEB_HOSTS, timeout=20_000,
    )
    expect(page.locator("#task-status .badge")).to_have_text("running")
    expect(page.locator("[data-count=running] b")).to_have_text(str(WEB_HOSTS))  # the counters move:
    lines = by_host(stream_lines(page))
    assert sorted(lines) == hosts and all(v[0] == "tick 1" for v in lines.values())
    expect(page.locator("#task-status .badge")).to_have_text("success", timeout=30_000)
    expect(page.locator("[data-count=success] b")).to_have_text(str(WEB_HOSTS))  # all running, then all done
    expect(page.locator("[data-count=running]")).to_have_count(0)
    lines = by_host(stream_lines(page))
    assert all(v[:4] == ["tick 1", "tick 2", "tick 3", "tick 4"] for v in lines.values())
    shot(page, f"task-live-{console.mode}")
    # the per-host view: one click on a prefix shows only that host's lines
    page.locator("#stream .ln .h", has_text=f"[{hosts[0]}]").first.click()
    expect(page.locator("#host-filter-label")).to_contain_text(hosts[0])
    assert set(by_host(stream_lines(page))) == {hosts[0]}
    # identical output: all hosts printed the same, so they form one group
    page.click("[data-tab=groups]")
    expect(page.locator("[data-group='0']")).to_contain_text(f"{WEB_HOSTS}")
    shot(page, f"task-groups-{console.mode}")
    # how the page looks is app.css's: nothing on the task page carries a style (Playwright's screenshots
    # leave an empty style attribute on inputs)
    expect(page.locator("#app [style]:not([style=''])")).to_have_count(0)
    assert task > 0


def test_cancel_stops_a_long_task(page: Page, console: Console) -> None:
    """Cancel in the task view stops a long command on every host; the hosts end `cancelled`."""
    login(page, console)
    run_from_form(page, console, "echo started; sleep 120")
    page.wait_for_function("(n) => document.querySelectorAll('#stream .ln').length >= n", arg=WEB_HOSTS)
    started = time.monotonic()
    page.click("#task-cancel")
    expect(page.locator("#task-status .badge")).to_have_text("cancelled", timeout=20_000)
    assert time.monotonic() - started < 15
    expect(page.locator("[data-count=cancelled] b")).to_have_text(str(WEB_HOSTS))
    expect(page.locator("#task-cancel")).to_be_hidden()


def test_reload_mid_task_resumes_the_stream_with_nothing_missing(page: Page, console: Console) -> None:
    """Reloading while a task runs shows every line exactly once, from before and after the reload."""
    login(page, console)
    run_from_form(page, console, 'for i in $(seq 1 12); do echo "n=$i"; sleep 0.4; done')
    page.wait_for_function("() => [...document.querySelectorAll('#stream .ln .t')].some(e => e.textContent === 'n=3')")
    page.reload()
    expect(page.locator("#stream-state")).to_have_attribute("data-state", re.compile("live|ended"))
    expect(page.locator("#task-status .badge")).to_have_text("success", timeout=30_000)
    lines = by_host(stream_lines(page))
    want = [f"n={i}" for i in range(1, 13)]
    assert sorted(lines) == web_hosts(console)
    for host, got in lines.items():
        assert [x for x in got if x.startswith("n=")] == want, host


def test_history_filters_by_status_and_runs_again(page: Page, console: Console) -> None:
    """History filtered by `failed` lists only failed tasks, survives a reload, and "run again" refills the form."""
    with console.api() as c:
        r = c.post("/api/v1/tasks", json={"target": {"group": "web"}, "cmd": "echo to-fail; exit 3", "timeout": "20s"})
        failed_id = r.json()["id"]
        c.post("/api/v1/tasks", json={"target": {"group": "web"}, "cmd": "true", "timeout": "20s"})
        for _ in range(100):
            if c.get(f"/api/v1/tasks/{failed_id}").json()["status"] == "failed":
                break
            time.sleep(0.2)
    login(page, console)
    page.goto(console.url + "#/history")
    page.select_option("#f-status", "failed")
    expect(page.locator(f"#tasks-body tr[data-task='{failed_id}']")).to_be_visible()
    expect(page.locator("#tasks-body tr:not([data-status=failed])")).to_have_count(0)
    shot(page, f"history-{console.mode}")
    page.reload()
    expect(page.locator("#f-status")).to_have_value("failed")
    expect(page.locator(f"#tasks-body tr[data-task='{failed_id}']")).to_be_visible()
    # the per-host results of that task, with the archived output
    page.click("#tab-results")
    page.fill("#f-task", str(failed_id))
    page.select_option("#f-status", "failed")
    expect(page.locator("#results-body tr[data-status=failed]")).to_have_count(WEB_HOSTS)
    page.locator("#results-body tr[data-status=failed]").first.click()
    expect(page.locator("#results-body pre.out").first).to_contain_text("to-fail")
    # run again: back to the form with the same command and target
    page.goto(console.url + "#/history?status=failed")
    page.locator(f"#tasks-body tr[data-task='{failed_id}'] button").click()
    expect(page.locator("#run-cmd")).to_have_value("echo to-fail; exit 3")
    expect(page.locator("#run-group")).to_have_value("web")


def test_terminal_runs_echo_hello_and_the_recording_replays_it(page: Page, console: Console,
                                                               fleet_terminals: Fleet) -> None:
    """A terminal on a fleet host answers `echo hello` with hello; the session is listed and its replay shows it."""
    host = web_hosts(console)[0]
    login(page, console)
    page.goto(console.url + f"#/terminal/host/{host}")
    expect(page.locator("#term-state")).to_have_attribute("data-state", "connected")
    page.locator("#terminal .xterm").click()
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('$')")
    page.keyboard.type("echo hello-$((40+2))\n")
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('hello-42')")
    shot(page, f"terminal-{console.mode}")
    page.click("#term-close")
    expect(page.locator("#term-state")).to_have_attribute("data-state", "closed")
    page.goto(console.url + "#/terminal")
    row = page.locator("#sessions-body tr").first
    expect(row).to_contain_text(host)
    expect(row).to_contain_text("closed by the user")
    shot(page, f"terminal-sessions-{console.mode}")
    row.locator("button", has_text="Replay").click()
    expect(page.locator("#replay-state")).to_have_attribute("data-state", "finished", timeout=30_000)
    assert "hello-42" in page.locator("#replay .xterm-rows").inner_text()
    shot(page, f"terminal-replay-{console.mode}")


def test_language_switch_is_remembered_per_user(page: Page, console: Console) -> None:
    """Switching to 简体中文 translates the console at once and is remembered by the server for the next login."""
    login(page, console)
    try:
        page.select_option("#lang-select", "zh-CN")
        expect(page.locator("[data-nav=dashboard]")).to_have_text("仪表盘")
        page.goto(console.url + "#/hosts")
        expect(page.locator("#add-hosts")).to_have_text("添加主机")
        expect(page.locator("#hosts-body tr[data-host]").first).to_be_visible()
        shot(page, f"hosts-zh-{console.mode}")
        # a fresh browser (no local storage) gets Chinese from the server after login
        fresh = page.context.browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
        try:
            other = fresh.new_page()
            login(other, console)
            expect(other.locator("[data-nav=dashboard]")).to_have_text("仪表盘")
            expect(other.locator("#logout")).to_have_text("退出")
        finally:
            fresh.close()
    finally:
        page.select_option("#lang-select", "en")
        expect(page.locator("[data-nav=dashboard]")).to_have_text("Dashboard")


def test_a_dropped_connection_resumes_the_stream_with_nothing_missing(page: Page, console: Console) -> None:
    """When the live stream's connection drops mid-task, the page reconnects by itself and misses no line."""
    routes: list[object] = []

    def through(ws: object) -> None:
        ws.connect_to_server()  # type: ignore[attr-defined]
        routes.append(ws)

    page.route_web_socket(re.compile(r".*/stream\?after=\d+$"), through)
    login(page, console)
    run_from_form(page, console, 'for i in $(seq 1 12); do echo "m=$i"; sleep 0.4; done')
    page.wait_for_function("() => [...document.querySelectorAll('#stream .ln .t')].some(e => e.textContent === 'm=3')")
    routes[-1].close(code=1006)  # type: ignore[attr-defined]
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "retrying")
    expect(page.locator("#task-status .badge")).to_have_text("success", timeout=30_000)
    assert len(routes) >= 2  # it did reconnect
    for host, got in by_host(stream_lines(page)).items():
        assert [x for x in got if x.startswith("m=")] == [f"m={i}" for i in range(1, 13)], host
