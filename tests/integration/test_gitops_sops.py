"""SOPs kept in the GitOps repository (``sops/*.yaml``): a real bare repository, real pushes and their signed
webhooks, a real server, the OpenSSH fleet. A sync validates and stores them (origin git, bound to the commit),
they are read-only in the API, an invalid one is reported with file, step and line without stopping the sync,
a removed one disappears, and a rollback brings back the SOPs of that commit."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_gitops_fleet import STATIC, Setup, git

from smallyi.testing import Fleet

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

CHECK = """\
name: disk_check
description: df on the web group
target: {group: web}
steps:
  - id: check_disk
    type: exec
    cmd: "df -h / | tail -1"
    timeout: 10
"""
BROKEN = """\
steps:
  - id: first
    type: exec
    cmd: "true"
  - id: slow
    type: exec
    cmd: "sleep 1"
    timeout: 10x
"""


@pytest.fixture
def setup(tmp_path: Path, ssh_fleet: Fleet) -> Iterator[Setup]:
    root = Path(f"/tmp/small-yi-gitops-sops-{uuid.uuid4().hex[:8]}")
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    s = Setup(tmp_path, ssh_fleet, root)
    try:
        yield s
    finally:
        s.close()
        shutil.rmtree(root, ignore_errors=True)


def base(setup: Setup) -> dict[str, str]:
    return {"hosts/web.yaml": setup.hosts_yaml(), "templates/app.conf.j2": STATIC, "sync.yaml": setup.manifest()}


def remove(setup: Setup, path: str, message: str) -> str:
    git("rm", "-q", path, cwd=setup.work)
    git("commit", "-q", "-m", message, cwd=setup.work)
    subprocess.run(["git", "push", "origin", "HEAD:main"], cwd=setup.work, capture_output=True, check=True)
    return git("rev-parse", "HEAD", cwd=setup.work)


def test_sops_from_the_repository(setup: Setup) -> None:
    """Stored from the commit and runnable; an invalid file is reported (file, step, line) while the files and the
    other SOPs go out; edits through the API are refused naming the repository; removal and rollback follow Git."""
    names = [n for n, _ in setup.hosts]
    sha1, _ = setup.push({**base(setup), "sops/disk_check.yaml": CHECK, "sops/broken.yaml": BROKEN,
                          "sops/README.md": "not a SOP\n"}, "config and SOPs")
    record = setup.wait_sync(sha1)
    # the files went out, the good SOP is stored, the bad one is reported and fails the sync
    assert {h["host"]: h["status"] for h in record["hosts"]} == {n: "changed" for n in names}
    assert record["status"] == "failed"
    assert record["sops"]["created"] == ["disk_check"] and record["sops"]["removed"] == []
    [problem] = [p for p in record["sops"]["problems"] if p["severity"] == "error"]
    assert (problem["file"], problem["step"], problem["line"], problem["field"]) == \
        ("sops/broken.yaml", "slow", 8, "timeout")
    assert problem["text"].startswith("sops/broken.yaml:8: step slow: timeout: ")
    assert "1 SOP file(s) not stored; first: sops/broken.yaml:8: step slow" in record["reason"]

    http = setup.http
    listed = {s["name"]: s for s in http.get("/api/v1/sops").json()["items"]}
    assert set(listed) == {"disk_check"}
    sop = http.get("/api/v1/sops/disk_check").json()
    assert sop["origin"] == "git" and sop["version"] == 1 and sop["source"] == CHECK
    assert sop["git"] == {"repo": str(setup.bare), "path": "sops/disk_check.yaml", "commit": sha1}

    # read-only: replace, delete and create under its name are refused, naming the repository and the file
    for r in (http.put("/api/v1/sops/disk_check", json={"source": CHECK.replace("tail -1", "tail -2")}),
              http.delete("/api/v1/sops/disk_check"),
              http.post("/api/v1/sops", json={"name": "disk_check", "source": CHECK})):
        assert r.status_code == 409, r.text
        message = r.json()["error"]["message"]
        assert str(setup.bare) in message and "sops/disk_check.yaml" in message and "commit" in message
    assert http.get("/api/v1/sops/disk_check").json()["version"] == 1

    # a git SOP runs like any stored SOP, on the fleet hosts the same commit imported
    run = http.post("/api/v1/sops/disk_check/runs", json={})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    for _ in range(300):
        got = http.get(f"/api/v1/sop-runs/{run_id}").json()
        if got["status"] != "running":
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert got["status"] == "success" and got["sop_version"] == 1
    assert sorted(got["steps"][0]["result"]["ok_hosts"]) == sorted(names)

    # the next commit fixes the bad file and changes the good one: one new version each, bound to the new commit
    sha2, _ = setup.push({"sops/disk_check.yaml": CHECK.replace("tail -1", "tail -n 1"),
                          "sops/broken.yaml": BROKEN.replace("10x", "10s")}, "fix the SOPs")
    second = setup.wait_sync(sha2)
    assert second["status"] == "success", second["reason"]
    assert second["sops"]["created"] == ["broken"] and second["sops"]["updated"] == ["disk_check"]
    v2 = http.get("/api/v1/sops/disk_check").json()
    assert v2["version"] == 2 and v2["git"]["commit"] == sha2 and "tail -n 1" in v2["source"]

    # removing a file removes its SOP at the next sync
    sha3 = remove(setup, "sops/broken.yaml", "broken is no longer needed")
    third = setup.wait_sync(sha3)
    assert third["sops"]["removed"] == ["broken"] and third["sops"]["unchanged"] == ["disk_check"]
    assert http.get("/api/v1/sops/broken").status_code == 404
    assert http.get("/api/v1/sops/disk_check").json()["git"]["commit"] == sha3

    # a rollback to the first commit restores that commit's SOPs (and drops what came later)
    back = http.post("/api/v1/gitops/rollback", json={"to": sha1, "wait": True}).json()
    assert back["kind"] == "rollback" and back["sops"]["updated"] == ["disk_check"]
    restored = http.get("/api/v1/sops/disk_check").json()
    assert restored["source"] == CHECK and restored["git"]["commit"] == sha1 and restored["version"] == 3
    assert http.get("/api/v1/sops/broken").status_code == 404  # it did not validate at that commit


def test_a_platform_sop_is_not_overwritten_and_plan_shows_sop_changes(setup: Setup) -> None:
    """A name already stored in the platform is refused (reported), not taken over; a plan says what would change."""
    http = setup.http
    assert http.post("/api/v1/sops", json={"name": "disk_check", "source": CHECK}).status_code == 201
    hook = setup.bare / "hooks" / "post-receive"
    hook.rename(hook.with_suffix(".off"))  # no webhook: the plan comes before any sync
    setup.push({**base(setup), "sops/disk_check.yaml": CHECK.replace("tail -1", "tail -3"),
                "sops/other.yml": CHECK.replace("name: disk_check\n", "")}, "clash")
    plan = http.post("/api/v1/gitops/plan", json={}).json()
    assert plan["sops"]["created"] == ["other"] and plan["sops"]["problems"][0]["file"] == "sops/disk_check.yaml"
    assert http.get("/api/v1/sops/other").status_code == 404  # a plan stores nothing
    record = http.post("/api/v1/gitops/sync", json={"wait": True}).json()
    assert record["sops"]["created"] == ["other"]
    [p] = record["sops"]["problems"]
    assert p["file"] == "sops/disk_check.yaml" and "already stored in the platform" in p["message"]
    kept = http.get("/api/v1/sops/disk_check").json()
    assert kept["origin"] == "platform" and kept["source"] == CHECK
    assert http.get("/api/v1/sops/other").json()["git"]["path"] == "sops/other.yml"
