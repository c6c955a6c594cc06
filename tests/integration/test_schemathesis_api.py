"""Schemathesis fuzzes every operation of /openapi.json as every role: admin, operator, a group-scoped
operator, viewer and auditor. No 5xx, and every answer fits the schema the API publishes (each route names
a response model; refusals have theirs), while the suite's strict answers turn any key a model does not
declare into a 500. The server runs in-process with a fake connector, so no command really runs.

Operations that end the session they run in (logging out, revoking a token) get a fresh login for each
example; every other operation gets one per operation, so no earlier call can leave the next one with a
revoked token. Nothing is left out: the test counts the operations it fuzzed against the document.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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

#: user → (role, groups); every built-in role, and an operator scoped to one group
USERS = {
    "admin": ("admin", None),
    "op-all": ("operator", None),
    "op-web": ("operator", ["web"]),
    "viewer": ("viewer", None),
    "auditor": ("auditor", None),
}
#: operations whose call ends the session it runs in: a fresh login for each example
SESSION_ENDING = {
    ("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/logout-all"),
    ("DELETE", "/api/v1/security/tokens/{token_id}"),
}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    users = ""
    for name, (role, groups) in USERS.items():
        users += f"    - username: {name}\n      password_hash: \"{ADMIN_HASH}\"\n      role: {role}\n"
        if groups:
            users += f"      groups: [{', '.join(groups)}]\n"
    # the fuzzer's own bad logins must not lock the test's good ones out
    cfg = parse_settings(
        f"database:\n  source: {tmp}/f.db\nsecrets:\n  key_file: {tmp}/k\n"
        f"auth:\n  login_max_failures: 1000000\n  address_max_failures: 1000000\n  users:\n{users}",
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
    yield url
    server.should_exit = True
    thread.join(10)


def _login(url: str, user: str) -> Callable[[], dict[str, str]]:
    def headers() -> dict[str, str]:
        r = httpx.post(url + "/api/v1/auth/login", json={"username": user, "password": ADMIN_PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['token']}"}
    return headers


def _explain(exc: BaseException) -> str:
    """The failure's message and, for a group (Hypothesis's flaky report, several checks), each member's."""
    parts = [str(exc)[:800]]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(f"  - {type(sub).__name__}: {_explain(sub)}")
    return "\n".join(parts)


def _fuzzer(op: Any, url: str, headers: Callable[[], dict[str, str]], examples: int,
            statuses: Counter[int]) -> Callable[[], None]:
    """A Hypothesis test calling ``op`` with generated input, checking each answer, counting statuses."""
    @given(case=op.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        response = case.call(base_url=url, headers=headers())
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
    return fuzz


@pytest.mark.slow
@pytest.mark.parametrize("user", list(USERS))
def test_no_operation_fails_or_breaks_its_schema(live: str, user: str) -> None:
    """Every operation, fed generated input as this user, answers below 500 with a body matching its schema."""
    schema = schemathesis.openapi.from_url(live + "/openapi.json")
    document = httpx.get(live + "/openapi.json").json()
    declared = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    login = _login(live, user)
    examples = 20 if user == "admin" else 8
    failures: list[str] = []
    fuzzed: set[tuple[str, str]] = set()
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        op = result.ok()
        key = (op.method.upper(), op.path)
        fuzzed.add(key)
        op_headers = login()
        headers = login if key in SESSION_ENDING else (lambda h=op_headers: h)
        try:
            _fuzzer(op, live, headers, examples, statuses)()
        except BaseException as exc:  # collect every operation's failure (an exception group), then report all
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{key[0]} {key[1]}: {str(exc)[:800]}")
    assert fuzzed == declared and len(fuzzed) > 80, sorted(declared ^ fuzzed)
    assert not failures, "\n\n".join(failures)
    # the calls reached the routes, not only the door: some succeeded, and the refusals were answered
    assert sum(n for s, n in statuses.items() if 200 <= s < 300) > 0, statuses
    if user != "admin":
        assert statuses[403] > 0, statuses
