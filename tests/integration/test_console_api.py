"""The API the console added (preferences, hosts overview) and how the console is served: through a real
server, and under a path prefix as a reverse proxy forwards it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from support import Server, cli, start_server, write_config


def test_preferences_are_kept_per_user(server: Server) -> None:
    """The language starts unset, is stored by PUT, is refused when unknown, and merges other settings."""
    with server.client() as c:
        assert c.get("/api/v1/preferences").json() == {"language": None, "data": {}}
        assert c.put("/api/v1/preferences", json={"language": "zh-CN"}).json()["language"] == "zh-CN"
        bad = c.put("/api/v1/preferences", json={"language": "klingon"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "language"
        c.put("/api/v1/preferences", json={"data": {"page_size": 100}})
        assert c.get("/api/v1/preferences").json() == {"language": "zh-CN", "data": {"page_size": 100}}
    assert httpx.get(f"{server.url}/api/v1/preferences").status_code == 401


def test_hosts_overview_counts_latest_results(tmp_path: Path) -> None:
    """Hosts are counted by their latest finished result; a host that never ran counts as `never`."""
    cfg = write_config(tmp_path)
    assert cli("hosts", "add", "other", "--address", "127.0.0.1", "--port", "1", config=cfg).returncode == 0
    assert cli("run", "--hosts", "local", "--cmd", "true", config=cfg).returncode == 0
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            overview = c.get("/api/v1/overview/hosts").json()
            assert overview["total"] == 2 and overview["by_status"] == {"success": 1, "never": 1}
            status = c.post("/api/v1/overview/host-status", json={"hosts": ["local", "other"]}).json()["hosts"]
            assert status["local"]["status"] == "success" and status["local"]["task_id"] == 1
            assert status["other"] == {"status": "never", "task_id": None, "at": None}
    finally:
        srv.stop()


def test_the_console_is_served_with_a_strict_policy_and_its_vendored_files(server: Server) -> None:
    """The page has no inline script and a Content-Security-Policy; xterm.js and its licence are served."""
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    for path in ("static/js/main.js", "static/vendor/xterm/xterm.mjs", "static/vendor/xterm/LICENSE"):
        r = httpx.get(f"{server.url}/{path}")
        assert r.status_code == 200, path
    assert httpx.get(f"{server.url}/static/js/main.js").headers["content-type"].startswith("text/javascript")


def test_a_path_prefix_works_behind_a_proxy_that_strips_it(tmp_path: Path) -> None:
    """With server.base_path the app answers at the bare paths, as a proxy that strips the prefix forwards
    them (docs/nginx.md), and the login cookie is scoped to the prefix the browser sees."""
    cfg = write_config(tmp_path, extra="server:\n  base_path: /small-yi\n")
    srv = start_server(cfg)
    try:
        assert "static/js/main.js" in httpx.get(srv.url + "/").text
        assert httpx.get(srv.url + "/static/css/app.css").status_code == 200
        r = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "admin", "password": "correct horse battery staple"})
        assert r.status_code == 200 and "Path=/small-yi" in r.headers["set-cookie"]
    finally:
        srv.stop()


@pytest.mark.postgres
def test_console_tables_work_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """The console's migration runs on PostgreSQL: preferences, the overview and the session list answer."""
    cfg = write_config(tmp_path, database=f"database:\n  driver: postgres\n  source: {pg_url}\n")
    srv = start_server(cfg)
    try:
        with srv.client() as c:
            assert c.put("/api/v1/preferences", json={"language": "zh-CN"}).json()["language"] == "zh-CN"
            assert c.get("/api/v1/overview/hosts").json()["by_status"] == {"never": 1}
            assert c.get("/api/v1/terminal/sessions").json() == {"items": [], "total": 0}
    finally:
        srv.stop()
