"""Whoever can push to the GitOps repository gets no more than the GitOps role: a real bare repository, real
syncs, plans and webhooks, a real database. The server's own host, hosts added by hand, key files, known_hosts
files, unlisted key secrets and weaker host-key policies are refused, every refusal is in the plan's error and
the sync's record, and nothing of the commit is written: no host, no file, no SOP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_gitops_service import SECRET, Repo, files_of, manifest, push_body

from smallyi.config import parse_settings
from smallyi.errors import Conflict, InputError
from smallyi.execution.connectors.local import LocalConnector
from smallyi.gitops import webhook
from smallyi.inventory.hosts import HostSpec
from smallyi.runtime import Runtime
from smallyi.sop.store import SopStore

SOP = "description: uptime\ntarget: {group: web}\nsteps:\n  - id: up\n    type: exec\n    cmd: uptime\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "hosts-root"
    r.mkdir()
    return r


async def open_runtime(tmp_path: Path, repo: Repo, *, ssh: str = "", gitops: str = "") -> Runtime:
    """A CLI runtime on ``repo``; ``ssh`` and ``gitops`` add lines to those sections."""
    settings = parse_settings(
        f"database:\n  driver: sqlite3\n  source: {tmp_path}/db.sqlite\n"
        f"secrets:\n  key_file: {tmp_path}/master.key\n" + (f"ssh:\n{ssh}" if ssh else "") +
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n  webhook_secret: {SECRET}\n  timeout: 10s\n{gitops}",
        base_dir=tmp_path,
    )
    return await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})


@pytest.fixture
async def rt(tmp_path: Path, repo: Repo) -> AsyncIterator[Runtime]:
    runtime = await open_runtime(tmp_path, repo)
    yield runtime
    await runtime.close()


def hosts_file(tmp_path: Path) -> str:
    """h1 is harmless; ``local`` would replace the server's own host; h2 would log in with the server's master
    key file and without host-key checks."""
    return (
        "group: web\nhosts:\n"
        "  - name: h1\n    address: 127.0.0.1\n"
        "  - name: local\n    address: 127.0.0.1\n"
        "  - name: h2\n    address: 127.0.0.1\n"
        f"    ssh: {{private_key: {tmp_path}/master.key, host_key_policy: 'off'}}\n"
    )


async def test_the_server_host_and_server_key_files_are_refused_and_nothing_is_written(
        rt: Runtime, repo: Repo, root: Path, tmp_path: Path) -> None:
    """A commit that declares host ``local`` and gives a host the master key file with host-key checks off is
    refused whole: the plan and the sync name each refusal with its file and line, the built-in ``local`` is
    untouched, h1 is not imported, no file is written and the commit's SOP is not stored."""
    repo.commit({"hosts/web.yaml": hosts_file(tmp_path), "templates/app.conf.j2": "x\n",
                 "sync.yaml": manifest(root), "sops/uptime.yaml": SOP}, "take over the server")
    before = {h.name: h for h in await rt.inventory.all_hosts()}
    expected = [
        "hosts/web.yaml:5: host name 'local' is reserved for the small-yi server itself",
        "hosts/web.yaml:9: host 'h2': ssh.private_key: a repository cannot name a key file on the server",
        "hosts/web.yaml:9: host 'h2': ssh.host_key_policy 'off' is weaker than the server's ssh.host_key_policy "
        "(strict)",
    ]
    with pytest.raises(InputError) as planned:
        await rt.gitops.plan()
    with pytest.raises(InputError) as synced:
        await rt.gitops.sync(trigger="cli", user="t")
    items, _ = await rt.gitops.history(kind="sync")
    for needle in expected:
        assert needle in planned.value.message and needle in synced.value.message, synced.value.message
        assert needle in items[0]["reason"]
    assert items[0]["status"] == "error"
    after = {h.name: h for h in await rt.inventory.all_hosts()}
    assert after == before and after["local"].connector == "local" and after["local"].ssh.to_dict() == {}
    assert files_of(root) == {}
    assert await SopStore(rt.db).names() == frozenset()


async def test_a_webhook_sync_reports_the_refusals_in_its_record(rt: Runtime, repo: Repo, root: Path,
                                                                  tmp_path: Path) -> None:
    """The same commit pushed and delivered by a webhook ends its record ``error`` with every refusal."""
    sha = repo.commit({"hosts/web.yaml": hosts_file(tmp_path), "templates/app.conf.j2": "x\n",
                       "sync.yaml": manifest(root)}, "take over the server")
    body = push_body(sha)
    accepted = await rt.gitops.webhook({"X-GitHub-Event": "push",
                                        "X-Hub-Signature-256": webhook.sign_github(SECRET, body)}, body)
    assert accepted["status"] == "accepted"
    for t in list(rt.gitops._tasks):
        await t
    record = await rt.gitops.get(accepted["sync"])
    assert record["status"] == "error" and record["trigger"] == "webhook"
    assert "host name 'local' is reserved" in record["reason"] and "ssh.private_key: a repository" in record["reason"]
    assert "h1" not in {h.name for h in await rt.inventory.all_hosts()}


async def test_a_host_added_by_hand_is_not_taken_over(rt: Runtime, repo: Repo, root: Path) -> None:
    """A repository host named like a host added by hand is refused (file and line named) and the hand-made
    host keeps its address and settings; once that host is removed from the inventory, the commit syncs."""
    await rt.inventory.upsert([HostSpec(name="db-1", address="10.9.9.9", description="by hand")], source="manual")
    repo.commit({"hosts/web.yaml": "group: web\nhosts:\n  - name: h1\n    address: 127.0.0.1\n"
                                   "  - name: db-1\n    address: 127.0.0.1\n",
                 "templates/app.conf.j2": "x\n", "sync.yaml": manifest(root)}, "claim db-1")
    with pytest.raises(InputError) as planned:
        await rt.gitops.plan()
    with pytest.raises(InputError) as synced:
        await rt.gitops.sync(trigger="cli", user="t")
    needle = "hosts/web.yaml:5: host 'db-1' is already in the inventory (added by hand): a GitOps repository " \
             "cannot take it over"
    assert needle in planned.value.message and needle in synced.value.message, synced.value.message
    db1 = await rt.inventory.get_host("db-1")
    assert (db1.address, db1.description) == ("10.9.9.9", "by hand")
    assert "h1" not in {h.name for h in await rt.inventory.all_hosts()} and files_of(root) == {}
    await rt.inventory.delete_host("db-1")
    record = await rt.gitops.sync(trigger="cli", user="t")
    assert record["status"] == "success" and (await rt.inventory.get_host("db-1")).address == "127.0.0.1"


async def test_the_inventory_itself_refuses_a_git_import_over_another_hosts_name(rt: Runtime) -> None:
    """The inventory's git import refuses, inside its transaction, a host that came from elsewhere (the check
    a sync makes first cannot see a host added between that check and the import): nothing of the batch
    is saved."""
    await rt.inventory.upsert([HostSpec(name="db-1", address="10.9.9.9")], source="manual")
    with pytest.raises(Conflict) as info:
        await rt.inventory.upsert([HostSpec(name="h1", address="127.0.0.1"), HostSpec(name="db-1", address="1.2.3.4"),
                                   HostSpec(name="local", address="1.2.3.4")], source="git")
    assert "host 'db-1' is already in the inventory (added by hand)" in info.value.message
    assert "host 'local' is already in the inventory (the small-yi server itself)" in info.value.message
    hosts = {h.name: h for h in await rt.inventory.all_hosts()}
    assert "h1" not in hosts and hosts["db-1"].address == "10.9.9.9" and hosts["local"].connector == "local"


async def test_a_listed_key_secret_and_the_configs_own_policy_are_the_repositorys_to_give(
        tmp_path: Path, repo: Repo, root: Path) -> None:
    """With ``gitops.ssh_key_secrets: [edge-deploy]`` and ``ssh.host_key_policy: accept-new``, a repository host
    may name that secret and that policy; they land in the inventory as given."""
    rt = await open_runtime(tmp_path, repo, ssh="  host_key_policy: accept-new\n",
                            gitops="  ssh_key_secrets: [edge-deploy]\n")
    try:
        repo.commit({"hosts/web.yaml": "group: web\nhosts:\n  - name: h1\n    address: 127.0.0.1\n"
                                       "    ssh: {private_key_secret: edge-deploy, host_key_policy: accept-new, "
                                       "connect_timeout: 3s}\n",
                     "templates/app.conf.j2": "x\n", "sync.yaml": manifest(root)}, "edge key")
        record = await rt.gitops.sync(trigger="cli", user="t")
        assert record["status"] == "success", record["reason"]
        assert (await rt.inventory.get_host("h1")).ssh.to_dict() == {
            "private_key_secret": "edge-deploy", "host_key_policy": "accept-new", "connect_timeout": 3.0}
    finally:
        await rt.close()
