"""The hosts, groups and targets API through a real ``small-yi serve`` over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import Server

CASES = Path(__file__).resolve().parents[1] / "cases" / "import"


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        client.base_url = httpx.URL(f"{server.url}/api/v1")
        yield client


def host(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "address": f"10.0.0.{len(name)}", **kw}


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [h["name"] for h in response.json()["items"]]


def test_register_hosts_in_bulk_and_list(api: httpx.Client) -> None:
    """POST /hosts upserts a list and reports it; GET /hosts filters by group, label and search, with a total."""
    batch = [
        host("web-1", port=2222, user="deploy", labels={"env": "prod"}, groups=["web"], description="front"),
        host("web-2", labels={"env": "dev"}, groups=["web"]),
        host("db-1", labels={"env": "prod"}, groups=["db"], enabled=False),
    ]
    r = api.post("/hosts", json=batch)
    assert r.status_code == 200
    assert r.json() == {"created": ["db-1", "web-1", "web-2"], "updated": [], "unchanged": [],
                        "counts": {"created": 3, "updated": 0, "unchanged": 0}}
    assert api.post("/hosts", json=batch).json()["counts"] == {"created": 0, "updated": 0, "unchanged": 3}
    assert names(api.get("/hosts", params={"group": "web"})) == ["web-1", "web-2"]
    assert names(api.get("/hosts", params={"label": "env=prod"})) == ["db-1", "web-1"]
    assert names(api.get("/hosts", params=[("label", "env=prod"), ("group", "web")])) == ["web-1"]
    assert names(api.get("/hosts", params={"search": "front"})) == ["web-1"]
    page = api.get("/hosts", params={"limit": 2, "offset": 1}).json()
    assert [h["name"] for h in page["items"]] == ["local", "web-1"] and page["total"] == 4
    assert page["items"][1] == {
        "name": "web-1", "address": "10.0.0.5", "port": 2222, "user": "deploy", "labels": {"env": "prod"},
        "groups": ["web"], "description": "front", "enabled": True, "connector": "ssh", "ssh": {},
    }


@pytest.mark.parametrize(
    ("batch", "field", "message"),
    [
        ([host("ok"), host("bad", port=70000)], "1.port", "less than or equal to 65535"),
        ([host("ok"), host("bad name")], "1.name", "host name 'bad name' is not valid"),
        ([host("ok"), {"name": "x", "adress": "10.0.0.1"}], "1.address", "Field required"),
        ([host("ok"), host("ok")], "name", "given more than once: ok"),
        ([host("ok", labels={"bad key": "v"})], "0.labels", "label key 'bad key'"),
    ],
)
def test_bad_batch_is_422_and_saves_nothing(api: httpx.Client, batch: list[Any], field: str, message: str) -> None:
    """A bad host in a batch answers 422 with the error shape naming the field; no host of it is saved."""
    r = api.post("/hosts", json=batch)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and error["field"] == field and message in error["message"]
    assert names(api.get("/hosts")) == ["local"]


def test_unknown_field_is_refused(api: httpx.Client) -> None:
    """Request bodies are strict: an unknown key is a 422 naming it."""
    r = api.post("/hosts", json=[host("a", colour="blue")])
    assert r.status_code == 422 and r.json()["error"]["field"] == "0.colour"


def test_get_patch_delete_one_host(api: httpx.Client) -> None:
    """GET, PATCH (partial; rename; labels replaced) and DELETE /hosts/{name}; 404 and 409 where due."""
    api.post("/hosts", json=[host("web-1", groups=["web"]), host("web-2")])
    assert api.get("/hosts/web-1").json()["groups"] == ["web"]
    r = api.patch("/hosts/web-1", json={"port": 2200, "labels": {"env": "dev"}, "name": "web-01"})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["port"], r.json()["labels"], r.json()["groups"]) == (
        "web-01", 2200, {"env": "dev"}, ["web"])
    assert api.get("/hosts/web-1").status_code == 404
    conflict = api.patch("/hosts/web-01", json={"name": "web-2"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    assert api.patch("/hosts/web-01", json={"address": None}).status_code == 422
    assert api.delete("/hosts/web-01").status_code == 204
    missing = api.delete("/hosts/web-01")
    assert missing.status_code == 404 and "web-01" in missing.json()["error"]["message"]


def test_import_file_body(api: httpx.Client) -> None:
    """POST /hosts/import reads the body in the given format (or the filename's), with extra groups and dry runs."""
    text = (CASES / "ini-full" / "hosts").read_text()
    dry = api.post("/hosts/import", params={"format": "ini", "dry_run": "true"}, content=text)
    assert dry.status_code == 200 and dry.json()["counts"]["created"] == 7 and dry.json()["dry_run"] is True
    assert names(api.get("/hosts")) == ["local"]
    r = api.post("/hosts/import", params={"format": "ini", "group": "imported"}, content=text)
    assert r.json()["counts"] == {"created": 7, "updated": 0, "unchanged": 0}
    assert len(names(api.get("/hosts", params={"group": "imported"}))) == 7
    csv_text = (CASES / "csv-basic" / "hosts.csv").read_text()
    r = api.post("/hosts/import", params={"filename": "hosts.csv"}, content=csv_text)
    assert r.json()["counts"]["created"] == 4


def test_import_bad_file_is_422_listing_lines(api: httpx.Client) -> None:
    """A bad import file answers 422 naming every bad line, and nothing is saved; a format is required."""
    text = (CASES / "bad-yaml" / "inventory.yaml").read_text()
    r = api.post("/hosts/import", params={"format": "yaml"}, content=text)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_import"
    assert all(f"line {n}:" in error["message"] for n in (5, 9, 12, 13, 15, 17, 18))
    assert names(api.get("/hosts")) == ["local"]
    r = api.post("/hosts/import", content="name,address\na,b\n")
    assert r.status_code == 422 and r.json()["error"]["field"] == "format"
    r = api.post("/hosts/import", params={"format": "xml"}, content="<hosts/>")
    assert r.status_code == 422 and "unknown inventory format" in r.json()["error"]["message"]
    r = api.post("/hosts/import", params={"format": "csv"}, content=b"name,address\n" + b"#" * (17 << 20))
    assert r.status_code == 413 and "larger than 16MiB" in r.json()["error"]["message"]  # refused at the door


def test_groups_routes(api: httpx.Client) -> None:
    """Groups: list with counts, create (409 if taken), rename, members add/remove, delete."""
    api.post("/hosts", json=[host("a"), host("b")])
    r = api.post("/groups", json={"name": "canary", "description": "first"})
    assert r.status_code == 201 and r.json() == {"name": "canary", "description": "first", "host_count": 0}
    assert api.post("/groups", json={"name": "canary"}).status_code == 409
    r = api.post("/groups/canary/members", json={"add": ["a", "b"]})
    assert r.json() == {"group": "canary", "members": ["a", "b"], "total": 2}
    assert api.post("/groups/canary/members", json={"remove": ["b"]}).json()["members"] == ["a"]
    missing = api.post("/groups/canary/members", json={"add": ["zz"]})
    assert missing.status_code == 404 and "zz" in missing.json()["error"]["message"]
    assert api.patch("/groups/canary", json={"name": "early"}).json()["name"] == "early"
    listed = api.get("/groups").json()
    assert listed == {"items": [{"name": "early", "description": "first", "host_count": 1},
                                {"name": "local", "description": "", "host_count": 1}], "total": 2}
    paged = [api.get("/groups", params={"limit": 1, "offset": k}).json() for k in (0, 1, 2)]
    assert [[g["name"] for g in p["items"]] for p in paged] == [["early"], ["local"], []]
    assert {p["total"] for p in paged} == {2}
    assert api.get("/groups", params={"limit": 0}).status_code == 422
    assert api.delete("/groups/early").status_code == 204
    assert api.delete("/groups/early").status_code == 404
    assert api.get("/hosts/a").json()["groups"] == []


def test_targets_resolve_counts_matches(api: httpx.Client) -> None:
    """POST /targets/resolve answers the enabled hosts a task would run on and their count."""
    api.post("/hosts", json=[host("web-1", groups=["web"], labels={"env": "prod"}),
                             host("web-2", groups=["web"], labels={"env": "dev"}),
                             host("web-3", groups=["web"], enabled=False)])
    r = api.post("/targets/resolve", json={"group": "web"})
    assert names(r) == ["web-1", "web-2"] and r.json()["total"] == 2
    assert api.post("/targets/resolve", json={"group": "web", "labels": {"env": "prod"}}).json()["total"] == 1
    assert api.post("/targets/resolve", json={"hosts": ["web-3"]}).json() == {"items": [], "total": 0}
    unknown = api.post("/targets/resolve", json={"group": "nope"})
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    empty = api.post("/targets/resolve", json={})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "target"


def run_task(api: httpx.Client, target: dict[str, Any], cmd: str) -> None:
    task = api.post("/tasks", json={"target": target, "cmd": cmd, "timeout": "10s"}).json()
    deadline = time.monotonic() + 30
    while api.get(f"/tasks/{task['id']}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"task {task['id']} did not finish"
        time.sleep(0.1)


def test_hosts_filtered_by_latest_status(api: httpx.Client) -> None:
    """GET /hosts?status= lists the hosts whose latest finished result has that status, across every page
    (total included), with the other filters; `never` for hosts without a result; a bad status is 422."""
    api.post("/hosts", json=[host("dead-1", address="127.0.0.1", port=1, groups=["dead"]),
                             host("dead-2", address="127.0.0.1", port=1, groups=["dead"]), host("fresh-1")])
    run_task(api, {"group": "dead"}, "true")
    run_task(api, {"hosts": ["local"]}, "exit 3")
    assert names(api.get("/hosts", params={"status": "failed"})) == ["local"]
    run_task(api, {"hosts": ["local"]}, "true")  # the latest result counts, not the worst
    assert names(api.get("/hosts", params={"status": "failed"})) == []
    assert names(api.get("/hosts", params={"status": "success"})) == ["local"]
    assert names(api.get("/hosts", params={"status": "never"})) == ["fresh-1"]
    page = api.get("/hosts", params={"status": "unreachable", "limit": 1, "offset": 1}).json()
    assert [h["name"] for h in page["items"]] == ["dead-2"] and page["total"] == 2
    assert names(api.get("/hosts", params={"status": "unreachable", "search": "dead-1"})) == ["dead-1"]
    assert names(api.get("/hosts", params={"status": ""})) == ["dead-1", "dead-2", "fresh-1", "local"]
    bad = api.get("/hosts", params={"status": "broken"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    assert "never" in bad.json()["error"]["message"]


def test_routes_need_auth(server: Server) -> None:
    """Every hosts, groups and targets route answers 401 without a token."""
    routes = [("GET", "/hosts"), ("POST", "/hosts"), ("POST", "/hosts/import"), ("GET", "/hosts/local"),
              ("PATCH", "/hosts/local"), ("DELETE", "/hosts/local"), ("GET", "/groups"), ("POST", "/groups"),
              ("PATCH", "/groups/local"), ("DELETE", "/groups/local"), ("POST", "/groups/local/members"),
              ("POST", "/targets/resolve")]
    for method, path in routes:
        r = httpx.request(method, f"{server.url}/api/v1{path}", json={})
        assert r.status_code == 401, (method, path)
