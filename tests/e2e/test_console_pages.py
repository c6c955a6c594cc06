"""The rest of the console in a real browser (direct to the server): hosts and groups, API tokens, log
follow, and the terminal at the window's size (the views under load are in test_console_scale.py)."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from browser import WEB_HOSTS, Console, hold_replies, login, shot
from playwright.sync_api import Page, Route, expect

from smallyi.testing import Fleet
from support import start_server, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]

CSV = "name,address,port,groups,labels\nweb-a1,10.9.0.1,22,edge,env=prod\nweb-a2,10.9.0.2,2200,edge,env=staging\n"


def test_hosts_bulk_import_edit_groups_and_filters(page: Page, direct: Console) -> None:
    """Pasted CSV is checked then imported with a report; bad lines are refused whole; filters, edit and groups work."""
    login(page, direct)
    page.goto(direct.url + "#/hosts")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(WEB_HOSTS + 1)
    page.click("#add-hosts")
    page.fill("#import-text", "name,address\nok-1,10.0.0.1\nbad/name,10.0.0.2\n")
    page.select_option("#import-format", "csv")
    page.click("#import-check")
    expect(page.locator("#import-error")).to_contain_text("line 3")
    page.fill("#import-text", CSV)
    page.click("#import-check")
    expect(page.locator("#import-summary")).to_contain_text("would create 2")
    shot(page, "hosts-import")
    page.click("#import-go")
    expect(page.locator("#import-summary")).to_contain_text("2 created")
    page.keyboard.press("Escape")
    expect(page.locator("#hosts-body tr[data-host='web-a1']")).to_be_visible()
    # filter by group and by label
    page.select_option("#h-group", "edge")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(2)
    page.select_option("#h-group", "")
    page.fill("#h-label", "env=staging")
    page.keyboard.press("Enter")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(1)
    expect(page.locator("#hosts-body tr[data-host='web-a2']")).to_be_visible()
    page.fill("#h-label", "")
    page.keyboard.press("Enter")
    # edit: a new description
    page.locator("#hosts-body tr[data-host='web-a2'] button", has_text="Edit").click()
    page.locator("dialog label", has_text="description").locator("input").fill("the staging edge")
    page.locator("dialog button", has_text="Save").click()
    expect(page.locator("#hosts-body tr[data-host='web-a2']")).to_contain_text("the staging edge")
    # groups: create one, put two selected hosts in it
    page.click("#groups-btn")
    page.fill("#new-group", "canary")
    page.locator("dialog button", has_text="Create group").click()
    expect(page.locator("dialog")).to_contain_text("canary")
    page.keyboard.press("Escape")
    for name in ("web-a1", "web-a2"):
        page.locator(f"#hosts-body tr[data-host='{name}'] input[type=checkbox]").check()
    expect(page.locator("#bulk-bar")).to_contain_text("2 selected")
    page.select_option("#bulk-group", "canary")
    page.locator("#bulk-bar button", has_text="Add to group").click()
    page.select_option("#h-group", "canary")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(2)
    # the latest-status filter (server-side): no host has run in this server's database yet
    page.select_option("#h-group", "")
    with direct.api() as c:
        total = c.get("/api/v1/hosts").json()["total"]
    expect(page.locator("#hosts-count")).to_contain_text(f"of {total}")
    page.select_option("#h-status", "never")
    expect(page.locator("#hosts-count")).to_contain_text(f"of {total}")
    page.select_option("#h-status", "success")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(0)
    expect(page.locator("#hosts-count")).to_contain_text("of 0")


def test_api_token_is_shown_once_works_and_can_be_revoked(page: Page, direct: Console) -> None:
    """A token made in the console is shown once, authenticates the API, and stops working when revoked."""
    import httpx

    login(page, direct)
    page.goto(direct.url + "#/tokens")
    page.fill("#token-name", "ci-e2e")
    page.select_option("#token-ttl", "720h")
    page.locator("#token-name").press("Enter")
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("syt_")
    expect(page.locator("#tokens-body")).to_contain_text("ci-e2e")
    shot(page, "tokens")
    headers = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{direct.server.url}/api/v1/auth/me", headers=headers).status_code == 200
    page.reload()
    expect(page.locator("#token-secret")).to_have_count(0)  # never shown again
    page.once("dialog", lambda d: d.accept())
    page.locator("#tokens-body tr", has_text="ci-e2e").locator("button", has_text="Revoke").click()
    expect(page.locator("#tokens-body")).not_to_contain_text("ci-e2e")
    assert httpx.get(f"{direct.server.url}/api/v1/auth/me", headers=headers).status_code == 401


def test_log_follow_merges_hosts_and_the_grep_box_filters(page: Page, direct: Console) -> None:
    """Following a file across the group shows new lines from each host, prefixed; grep boxes narrow them."""
    log = Path(f"/tmp/smallyi-e2e-{uuid.uuid4().hex[:8]}.log")
    log.write_text("old line\n")
    os.chmod(log, 0o644)
    try:
        login(page, direct)
        page.goto(direct.url + "#/logs")
        page.fill("#log-group", "web")
        page.fill("#log-files", str(log))
        page.fill("#log-grep", "keep")
        page.fill("#log-lines", "0")
        page.click("#log-start")
        expect(page.locator("#log-state")).to_have_attribute("data-state", "live")
        time.sleep(2)  # tail -F is running on every host
        with log.open("a") as f:
            f.write("keep alpha\ndrop this\nkeep beta\n")
        page.wait_for_function("(n) => document.querySelectorAll('#log-output .ln').length >= n", arg=2 * WEB_HOSTS,
                               timeout=20_000)
        texts = page.locator("#log-output .ln").all_inner_texts()
        assert all("keep" in t for t in texts) and not any("drop" in t for t in texts)
        assert len({t.split("]")[0] for t in texts}) == WEB_HOSTS
        page.fill("#log-filter", "beta")
        expect(page.locator("#log-output .ln")).to_have_count(WEB_HOSTS)
        shot(page, "logs")
        page.click("#log-stop")
        expect(page.locator("#log-state")).to_have_attribute("data-state", "stopped")
    finally:
        log.unlink(missing_ok=True)


def test_a_status_reply_delivered_after_the_end_does_not_undo_it(page: Page, direct: Console) -> None:
    """The task page polls the task's status while it runs. A reply sent while the task ran but delivered
    after the stream's end (a slow server, a big task) must not show the finished task as running again:
    it did, and nothing corrected it, since polling stops at the end."""
    login(page, direct)
    with direct.api() as c:
        tid = c.post("/api/v1/tasks", json={"target": {"group": "web"}, "cmd": "sleep 7"}).json()["id"]
    held = hold_replies(page, f"/api/v1/tasks/{tid}")
    page.goto(direct.url + f"#/tasks/{tid}")
    expect(page.locator("#task-status .badge")).to_have_text("running")
    deadline = time.monotonic() + 20
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert held and all(resp.json()["status"] == "running" for _, resp in held)
    expect(page.locator("#stream-state")).to_have_attribute("data-state", "ended", timeout=30_000)
    expect(page.locator("#task-status .badge")).to_have_text("success")
    for route, resp in held:
        route.fulfill(response=resp)
    page.wait_for_timeout(1000)
    expect(page.locator("#task-status .badge")).to_have_text("success")
    page.unroute_all()


def test_a_page_left_while_it_loads_stops_its_refresh(page: Page, direct: Console) -> None:
    """Leaving the dashboard before it has loaded stops its 5 s refresh; it used to run on, unseen, for as
    long as the tab stayed open (one more for each such visit)."""
    login(page, direct)
    page.goto(direct.url + "#/tokens")
    expect(page.locator("h1")).to_have_text("API tokens")
    held: list[Route] = []
    page.route("**/api/v1/overview/hosts", lambda route: held.append(route))
    page.goto(direct.url + "#/")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the dashboard did not ask for its overview"
    page.goto(direct.url + "#/tokens")
    expect(page.locator("h1")).to_have_text("API tokens")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/overview/hosts" in r.url else None)
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/overview/hosts")
    page.wait_for_timeout(7000)  # more than the dashboard's 5 s refresh
    assert not asked, f"the dashboard went on refreshing after it was left: {asked}"


def test_an_idle_terminal_is_closed_and_says_why(page: Page, tmp_path: Path, ssh_fleet: Fleet,
                                                 fleet_terminals: Fleet) -> None:
    """With ``terminal.idle_timeout: 3s`` a shell nobody types into closes after 3 s: the page says when it
    will and why it did, and the closed session can be replayed and is listed as idle."""
    cfg = write_config(tmp_path, extra=ssh_fleet.ssh_yaml() + "terminal:\n  idle_timeout: 3s\n")
    name, addr = ssh_fleet.hosts[0]
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            assert c.post("/api/v1/hosts", json=[{"name": name, "address": addr, "port": ssh_fleet.port}]
                          ).json()["counts"]["created"] == 1
        console = Console("direct", srv.url + "/", srv)
        login(page, console)
        page.goto(console.url + f"#/terminal/host/{name}")
        expect(page.locator("#term-state")).to_have_attribute("data-state", "connected")
        expect(page.locator("#term-info")).to_contain_text("without input")
        started = time.monotonic()
        expect(page.locator("#term-state")).to_have_attribute("data-state", "closed", timeout=20_000)
        assert time.monotonic() - started > 1.5, "the shell closed long before its idle timeout"
        expect(page.locator("#term-state")).to_contain_text("no input for 3s: closed by the idle timeout")
        page.wait_for_function(
            "() => document.querySelector('#terminal .xterm-rows').textContent.includes('session closed')")
        page.locator("#term-info a", has_text="Replay this session").click()
        expect(page.locator("#replay-state")).to_have_attribute("data-state", "finished", timeout=30_000)
        page.goto(console.url + "#/terminal")
        expect(page.locator("#sessions-body tr").first).to_contain_text("idle")
    finally:
        srv.stop()


def test_terminal_follows_the_window_size_and_copies_and_pastes(page: Page, direct: Console,
                                                                fleet_terminals: Fleet) -> None:
    """The shell's size follows the browser window; Paste types the clipboard, Copy selection fills it."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, direct)
    page.goto(direct.url + "#/terminal/host/host-002")
    expect(page.locator("#term-state")).to_have_attribute("data-state", "connected")
    rows = page.locator("#terminal .xterm-rows")
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('$')")

    def size() -> tuple[int, int]:
        page.locator("#terminal .xterm").click()
        marker = uuid.uuid4().hex[:6]
        page.keyboard.type(f"echo {marker} $(stty size)\n")
        page.wait_for_function("(m) => new RegExp(m + ' \\\\d+ \\\\d+').test(document.querySelector('#terminal .xterm-rows').textContent)",
                               arg=marker)
        found = [ln for ln in rows.inner_text().splitlines() if ln.startswith(marker)]
        r, c = found[-1].split()[1:3]
        return int(c), int(r)

    wide = size()
    page.set_viewport_size({"width": 1000, "height": 600})
    page.wait_for_timeout(500)
    narrow = size()
    assert narrow[0] < wide[0] and narrow[1] < wide[1]
    page.evaluate("navigator.clipboard.writeText('echo pasted-$((1+1))')")
    page.click("button:has-text('Paste')")
    # the clipboard is read asynchronously and the terminal takes the focus back afterwards; Enter
    # pressed before that would go to the Paste button (and paste again) instead of the shell
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('pasted-$((1+1))')")
    expect(page.locator("#terminal .xterm-helper-textarea")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('pasted-2')")
    # select the output word by double-clicking it, then copy it
    line = page.locator("#terminal .xterm-rows > div", has_text=re.compile(r"^pasted-2")).last
    box = line.bounding_box()
    assert box is not None
    page.mouse.dblclick(box["x"] + 10, box["y"] + box["height"] / 2)
    page.click("button:has-text('Copy selection')")
    assert "pasted" in page.evaluate("navigator.clipboard.readText()")


def test_api_docs_page_works_offline(page: Page, console: Console) -> None:
    """/api/docs renders every route group from the package's own Swagger UI files, with nothing fetched
    from outside 127.0.0.1 (a CDN would be unreachable on an offline machine), under the console's CSP,
    directly and under nginx's path prefix."""
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        host = re.sub(r"^\w+://([^/:]+).*$", r"\1", route.request.url)
        if host != "127.0.0.1":
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", only_loopback)
    answer = page.goto(console.url + "api/docs")
    assert answer is not None
    assert "script-src 'self';" in answer.headers["content-security-policy"]  # no inline script needed
    api = page.request.get(console.url + "api/v1/auth/me")  # 401, with the API's headers under the prefix too
    assert api.status == 401 and api.headers["cache-control"] == "no-store"
    expect(page.locator(".swagger-ui .opblock-tag-section").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/tasks")
    assert not outside, f"the docs page fetched from outside: {outside}"
