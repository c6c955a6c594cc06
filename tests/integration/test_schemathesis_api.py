"""Schemathesis fuzzes every operation of /openapi.json as an admin, a viewer and an operator of one
group: no 5xx, and every answer fits the schema the API publishes — refusals included. The server runs
in-process with a fake connector, so no command really runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from smallyi.app import create_app
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from support import ADMIN_HASH, ADMIN_PASSWORD

#: ending the session under test (logging out, or an admin revoking any token by id) would turn every
#: later call into a 401
SKIP = {"/api/v1/auth/logout", "/api/v1/auth/logout-all", "/api/v1/security/tokens/{token_id}"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    import uvicorn

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    cfg = parse_settings(
        f"database:\n  source: {tmp}/f.db\nsecrets:\n  key_file: {tmp}/k\nauth:\n  users:\n"
        f"    - username: admin\n      password_hash: \"{ADMIN_HASH}\"\n"
        f"    - username: viewer\n      password_hash: \"{ADMIN_HASH}\"\n      role: viewer\n"
        f"    - username: op-web\n      password_hash: \"{ADMIN_HASH}\"\n      role: operator\n      groups: [web]\n",
        base_dir=tmp)
    app = create_app(cfg, connectors={"ssh": FakeConnector(), "local": FakeConnector()})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    tokens = {u: httpx.post(url + "/api/v1/auth/login", json={"username": u, "password": ADMIN_PASSWORD}).json()["token"]
              for u in ("admin", "viewer", "op-web")}
    yield {"url": url, **tokens}
    server.should_exit = True
    thread.join(10)


@pytest.mark.slow
@pytest.mark.parametrize("user", ["admin", "viewer", "op-web"])
def test_no_operation_fails_or_breaks_its_schema(live: dict[str, str], user: str) -> None:
    """Every operation, fed generated input as this user, answers below 500 with a body matching its schema."""
    schema = schemathesis.openapi.from_url(live["url"] + "/openapi.json")
    headers = {"Authorization": f"Bearer {live[user]}"}
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path in SKIP:
            continue
        tried += 1

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            case.call_and_validate(base_url=live["url"], headers=headers, checks=checks)

        try:
            fuzz()
        except BaseException as exc:  # collect every operation's failure (an exception group), then report all
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:600]}")
    assert tried >= 30
    assert not failures, "\n\n".join(failures)
