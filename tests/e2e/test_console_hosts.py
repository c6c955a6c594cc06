"""The host list in a real browser: the latest-status filter, answered by the server over every page
of hosts (not only the page on screen), and the built-in local host's terminal."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from browser import Console, login, shot
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]


def run(c: httpx.Client, hosts: list[str], cmd: str) -> None:
    task = c.post("/api/v1/tasks", json={"target": {"hosts": hosts}, "cmd": cmd, "timeout": "10s"}).json()
    deadline = time.monotonic() + 30
    while c.get(f"/api/v1/tasks/{task['id']}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_the_status_filter_spans_every_page(page: Page, direct: Console) -> None:
    """With 450 hosts (three pages), filtering by a latest status lists the matching hosts of every page
    with the right total, and keeps the filter in the page's address."""
    hosts = [{"name": f"st-{i:04d}", "address": "127.0.0.1", "port": 1, "groups": ["st"]} for i in range(450)]
    with direct.api() as c:
        assert c.post("/api/v1/hosts", json=hosts).json()["counts"]["created"] == 450
        run(c, ["st-0301", "st-0420"], "true")  # port 1: unreachable; both beyond the first page
    login(page, direct)
    page.goto(direct.url + "#/hosts")
    page.select_option("#h-group", "st")
    expect(page.locator("#hosts-count")).to_contain_text("of 450")
    page.select_option("#h-status", "unreachable")
    expect(page.locator("#hosts-body tr[data-host]")).to_have_count(2)
    expect(page.locator("#hosts-body tr[data-host='st-0420']")).to_contain_text("unreachable")
    expect(page.locator("#hosts-count")).to_have_text(re.compile(r"^1\D2 of 2$"))
    assert "status=unreachable" in page.url
    shot(page, "hosts-status-filter")
    page.select_option("#h-status", "never")
    expect(page.locator("#hosts-count")).to_contain_text("of 448")
    page.reload()
    expect(page.locator("#h-status")).to_have_value("never")
    expect(page.locator("#hosts-count")).to_contain_text("of 448")


def test_the_local_host_has_a_terminal(page: Page, direct: Console) -> None:
    """The host list offers host local a Terminal, which opens a shell on the server that runs what is typed."""
    login(page, direct)
    page.goto(direct.url + "#/hosts")
    page.locator("#hosts-body tr[data-host='local'] button", has_text="Terminal").click()
    expect(page.locator("#term-state")).to_have_attribute("data-state", "connected")
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.trim().length > 0")
    page.locator("#terminal .xterm").click()
    page.keyboard.type("echo on-the-server-$((6*7))\n")
    page.wait_for_function("() => document.querySelector('#terminal .xterm-rows').textContent.includes('on-the-server-42')")
    expect(page.locator("#term-info")).to_contain_text("recorded")
