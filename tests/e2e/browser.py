"""Helpers for the browser tests: a console under test, logging in, screenshots, stream lines."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import APIResponse, Page, Route

from smallyi.testing import Fleet
from support import ADMIN_PASSWORD, Server, cli, write_config

#: fleet hosts in group `web` of every e2e console
WEB_HOSTS = 6
SHOTS = Path(os.environ.get("SMALLYI_SCREENSHOTS", Path(__file__).parent / "screenshots"))


@dataclass
class Console:
    """One console under test: where the browser goes, and the server behind it (for API shortcuts)."""

    mode: str
    url: str  # ends with "/"
    server: Server

    def api(self) -> httpx.Client:
        return self.server.client()


def login(page: Page, console: Console, *, password: str = ADMIN_PASSWORD) -> None:
    page.goto(console.url)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_selector("#whoami")


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def stream_lines(page: Page) -> list[str]:
    """The task view's stream as text lines (``[host] text``)."""
    return [ln.strip() for ln in page.locator("#stream .ln").all_inner_texts()]


def by_host(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in lines:
        m = re.match(r"\[([^\]]+)\] (.*)$", ln)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def hold_replies(page: Page, path: str) -> list[tuple[Route, APIResponse]]:
    """Let the page's first request to ``path`` (an exact URL ending) through; answer every later one from
    the server at once but hold the reply back, for the test to deliver when it likes (a slow network)."""
    seen: list[str] = []
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:
        seen.append(route.request.url)
        if len(seen) == 1:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    page.route(lambda url: url.endswith(path), hold)
    return held


def fleet_config(folder: Path, fleet: Fleet, extra: str = "", connect_timeout: str = "10s") -> Path:
    """A server config reaching ``fleet`` with its first WEB_HOSTS hosts imported in group ``web``."""
    cfg = write_config(folder, extra=fleet.ssh_yaml(connect_timeout) + extra)
    lines = ["group: web", "hosts:"]
    for name, addr in fleet.hosts[:WEB_HOSTS]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {fleet.port}"]
    inv = folder / "inventory.yaml"
    inv.write_text("\n".join(lines) + "\n")
    r = cli("hosts", "import", str(inv), config=cfg)
    assert r.returncode == 0, r.stderr
    return cfg
