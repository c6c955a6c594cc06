"""The route x role matrix, generated from the application's own routes: every route declares a rule,
and every role (and an anonymous caller) is let in or refused exactly as that rule says."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.websockets import WebSocketDisconnect

from smallyi.api import errors
from smallyi.api.permissions import GUARD, all_routes, enforce, rules_of
from smallyi.app import create_app
from smallyi.auth.rbac import PUBLIC, SIGNED_IN, Open, RoleBook, Rule
from smallyi.config import parse_settings
from smallyi.execution.connectors.fake import FakeConnector
from support import ADMIN_HASH, ADMIN_PASSWORD, starlette_test_client

TestClient = starlette_test_client()

CUSTOM = {"deployer": ["tasks.read", "tasks.run", "hosts.read"]}
USERS = {"admin": "admin", "operator": "operator", "viewer": "viewer", "auditor": "auditor", "deployer": "deployer"}


def matrix_config(tmp: Path) -> str:
    users = "".join(
        f"    - username: {name}\n      password_hash: \"{ADMIN_HASH}\"\n      role: {role}\n"
        for name, role in USERS.items()
    )
    roles = "".join(f"  {n}:\n    permissions: [{', '.join(p)}]\n" for n, p in CUSTOM.items())
    return (f"database:\n  source: {tmp}/m.db\nauth:\n  users:\n{users}roles:\n{roles}"
            f"secrets:\n  key_file: {tmp}/master.key\n")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("matrix")
    settings = parse_settings(matrix_config(tmp), base_dir=tmp)
    app = create_app(settings, connectors={"ssh": FakeConnector(), "local": FakeConnector()})
    with TestClient(app) as c:
        yield c


def _path(path: str, route: APIRoute | APIWebSocketRoute) -> str:
    def fill(m: re.Match[str]) -> str:
        conv = route.param_convertors.get(m.group(1))
        return "999999" if conv is not None and conv.__class__.__name__ == "IntegerConvertor" else "nope"

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", fill, path)


def expected(rule: Rule, role: str | None) -> bool:
    if rule is PUBLIC:
        return True
    if role is None:
        return False
    if rule is SIGNED_IN:
        return True
    assert not isinstance(rule, Open)
    return rule in RoleBook.build(CUSTOM).perms(role)


def _login(c: TestClient, user: str) -> str:
    r = c.post("/api/v1/auth/login", json={"username": user, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def _allowed_http(c: TestClient, path: str, route: APIRoute, token: str | None) -> bool:
    method = sorted(route.methods - {"HEAD"})[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    c.cookies.clear()  # the login cookie must not stand in for the token under test
    r = c.request(method, _path(path, route), headers=headers)
    assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:200]}"
    return not _refused_by_rbac(r.status_code, r.text)


def _refused_by_rbac(status: int, text: str) -> bool:
    """The declaration's refusal, told apart from a handler's own (a webhook's bad signature is a 401 too)."""
    if status == 401:
        return "not logged in" in text
    return status == 403 and ("lacks permission" in text or "declares no permission" in text)


def _allowed_ws(c: TestClient, path: str, route: APIWebSocketRoute, token: str | None) -> bool:
    protocols = [f"bearer.{token}"] if token else []
    c.cookies.clear()
    try:
        with c.websocket_connect(_path(path, route), subprotocols=protocols) as ws:
            ws.close()
            return True
    except WebSocketDisconnect as exc:
        return exc.code not in (4401, 4403)


def test_every_route_declares_a_rule(client: TestClient) -> None:
    """A route without a needs(...) declaration (or a public declaration) fails this test."""
    app = client.app
    assert isinstance(app, FastAPI)
    missing = [f"{sorted(getattr(r, 'methods', None) or ['WS'])} {path}"
               for path, r in all_routes(app) if not rules_of(r)]
    assert not missing, f"routes without a permission declaration: {missing}"


REVIEWED = Path(__file__).parent.parent / "cases" / "rbac" / "routes.yaml"


def test_every_route_needs_what_the_reviewed_table_says(client: TestClient) -> None:
    """The matrix below checks that each route is enforced as it declares; this checks the declarations
    themselves against a table a person reviewed (tests/cases/rbac/routes.yaml): a write declared with a
    read permission, or a new route nobody classified, fails here."""
    import yaml

    app = client.app
    assert isinstance(app, FastAPI)
    declared: dict[str, str] = {}
    for path, route in all_routes(app):
        if isinstance(route, APIWebSocketRoute):
            methods = ["WS"]
        elif hasattr(route, "methods") and route.methods:
            methods = sorted(set(route.methods) - {"HEAD"})
        else:
            continue  # a mount (static files): public by declare_public, not a route of its own
        for m in methods:
            declared[f"{m} {path}"] = ", ".join(r.value for r in rules_of(route))
    reviewed = yaml.safe_load(REVIEWED.read_text())
    new = sorted(set(declared) - set(reviewed))
    gone = sorted(set(reviewed) - set(declared))
    changed = sorted(f"{k}: declares {declared[k]}, the table says {reviewed[k]}"
                     for k in set(declared) & set(reviewed) if declared[k] != reviewed[k])
    assert not new, f"routes missing from {REVIEWED.name} (add each with the permission it should need): {new}"
    assert not gone, f"routes in {REVIEWED.name} that no longer exist: {gone}"
    assert not changed, "\n".join(changed)


@pytest.mark.parametrize("role", [*USERS, None])
def test_each_role_gets_exactly_what_each_route_declares(client: TestClient, role: str | None) -> None:
    """For every route of the app: the role is let in if and only if the route's rule grants it."""
    app = client.app
    assert isinstance(app, FastAPI)
    wrong = []
    for path, route in all_routes(app):
        rules = rules_of(route)
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue
        want = all(expected(rule, role) for rule in rules)
        token = _login(client, role) if role else None  # a fresh session: logout routes end it
        got = _allowed_ws(client, path, route, token) if isinstance(route, APIWebSocketRoute) \
            else _allowed_http(client, path, route, token)
        if got != want:
            wrong.append(f"{path} [{', '.join(r.value for r in rules)}]: expected "
                         f"{'allow' if want else 'deny'}, got {'allow' if got else 'deny'}")
    assert not wrong, f"role {role or 'anonymous'}:\n" + "\n".join(wrong)


def test_a_route_that_declares_nothing_is_refused(client: TestClient) -> None:
    """A route added without a declaration answers 403, whoever calls (it fails closed)."""
    app = FastAPI(dependencies=[GUARD])
    errors.install(app)
    router = APIRouter()

    @router.get("/x")
    async def x() -> dict[str, str]:
        return {"secret": "leaked"}

    app.include_router(router)
    assert enforce(app) == ["GET /x"]
    r = TestClient(app).get("/x")
    assert r.status_code == 403 and "declares no permission" in r.json()["error"]["message"]
