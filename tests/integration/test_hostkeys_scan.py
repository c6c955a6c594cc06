"""``small-yi hostkeys scan``: hosts whose key is not known yet are reported as "unknown host key" (not a
mismatch), shown with fingerprints, trusted once confirmed, and then reached under the strict policy; a
changed key is never trusted by a scan. On the real OpenSSH fleet, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from smallyi.testing import Fleet
from support import cli, write_config

pytestmark = pytest.mark.fleet


def _config(tmp_path: Path, fleet: Fleet, known_hosts: Path) -> Path:
    cfg = write_config(tmp_path, extra=(f"ssh:\n  user: {fleet.user}\n  private_key: {fleet.key}\n"
                                        f"  known_hosts: {known_hosts}\n  host_key_policy: strict\n"
                                        "  connect_timeout: 10s\n"))
    inv = tmp_path / "inventory.yaml"
    inv.write_text("group: scanned\nhosts:\n" + "".join(
        f"  - name: {name}\n    address: {addr}\n    port: {fleet.port}\n" for name, addr in fleet.hosts[:3]))
    r = cli("hosts", "import", str(inv), config=cfg)
    assert r.returncode == 0, r.stderr
    return cfg


def _fleet_fingerprint(fleet: Fleet) -> str:
    line = fleet.known_hosts.read_text().splitlines()[0]
    return str(asyncssh.import_public_key(" ".join(line.split()[1:3])).get_fingerprint())


def test_unknown_keys_are_reported_as_unknown_then_scanned_and_trusted(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """An empty known_hosts under strict: every host is unreachable with "unknown host key"; the scan shows
    the hosts' real fingerprint, trusts nothing without confirmation, trusts all with --yes (audited), and
    then the same run succeeds."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cfg = _config(tmp_path, ssh_fleet, empty)

    r = cli("run", "--group", "scanned", "--cmd", "echo ok", "--timeout", "10s", "-o", "json", config=cfg)
    assert r.returncode != 0
    reasons = {res["reason"] for res in json.loads(r.stdout)["results"]}
    assert all(x.startswith("unknown host key for ") for x in reasons), reasons
    assert not any("mismatch" in x for x in reasons), reasons

    r = cli("hostkeys", "scan", "--group", "scanned", config=cfg, input="")
    assert r.returncode == 2 and "3 unknown host key(s) not trusted" in r.stderr, r.stderr
    assert _fleet_fingerprint(ssh_fleet) in r.stdout  # shown before asking
    assert json.loads(cli("hostkeys", "list", "-o", "json", config=cfg).stdout)["total"] == 0

    r = cli("hostkeys", "scan", "--group", "scanned", "--yes", "-o", "json", config=cfg)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["trusted"] == 3 and out["changed"] == 0 and out["errors"] == 0
    assert {i["fingerprint"] for i in out["items"]} == {_fleet_fingerprint(ssh_fleet)}
    assert all(i["status"] == "unknown" and i["trusted_now"] for i in out["items"])

    r = cli("run", "--group", "scanned", "--cmd", "echo ok", "--timeout", "10s", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr

    r = cli("hostkeys", "scan", "--group", "scanned", "-o", "json", config=cfg)
    assert r.returncode == 0 and {i["status"] for i in json.loads(r.stdout)["items"]} == {"known"}
    audit = json.loads(cli("audit", "search", "--action", "hostkey.pinned", "-o", "json", config=cfg).stdout)
    assert len(audit["items"]) == 3 and all(a["actor"].startswith("cli:") for a in audit["items"])


def test_a_changed_key_is_reported_and_never_trusted(tmp_path: Path, ssh_fleet: Fleet) -> None:
    """known_hosts names another key for the first host: the scan says changed, exits 1 and trusts only the
    hosts that were unknown."""
    name, addr = ssh_fleet.hosts[0]
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{addr}]:{ssh_fleet.port} {' '.join(other)}\n")
    cfg = _config(tmp_path, ssh_fleet, known)
    r = cli("hostkeys", "scan", "--group", "scanned", "--yes", "-o", "json", config=cfg)
    assert r.returncode == 1
    items = {i["host"]: i for i in json.loads(r.stdout)["items"]}
    assert items[name]["status"] == "changed" and not items[name]["trusted_now"]
    assert sum(i["trusted_now"] for i in items.values()) == 2
    r = cli("run", "--hosts", name, "--cmd", "true", "--timeout", "10s", "-o", "json", config=cfg)
    assert json.loads(r.stdout)["results"][0]["reason"].startswith(f"host key mismatch for {addr}:{ssh_fleet.port}")
