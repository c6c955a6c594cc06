"""The OpenSSH fleet's files: addresses, the inventories each tool reads, sshd's config; and the helper's
refusals before anything is written (no sshd, a folder of someone else's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from smallyi.inventory.importers import parse_inventory
from smallyi.inventory.service import host_dict
from smallyi.testing import Fleet, FleetError
from smallyi.testing import fleet_files as ff

KEY = Path("/srv/fleet/id_ed25519")
KNOWN = Path("/srv/fleet/known_hosts")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake"


def _description(n: int, port: int = 2222, user: str = "fleet") -> ff.Description:
    return ff.Description(tuple(ff.hosts(n)), port, user, KEY, KNOWN, HOST_KEY)


@pytest.mark.parametrize(("i", "address"), [(1, "127.0.1.1"), (2, "127.0.1.2"), (254, "127.0.1.254"),
                                            (255, "127.0.2.1"), (1000, "127.0.4.238"),
                                            (ff.MAX_HOSTS, "127.0.254.254")])
def test_hosts_are_numbered_across_127_0_x_y(i: int, address: str) -> None:
    """host-001 is 127.0.1.1 (as the docs say); the fourth octet never is 0 or 255."""
    assert ff.address(i) == address
    assert ff.hosts(i)[-1] == (f"host-{i:03d}", address)


@pytest.mark.parametrize("n", [-1, ff.MAX_HOSTS + 1])
def test_a_fleet_size_out_of_range_is_refused(n: int) -> None:
    """Beyond 127.0.254.254 there are no more addresses of this scheme."""
    with pytest.raises(ValueError, match=str(ff.MAX_HOSTS)):
        ff.hosts(n)


def test_the_inventories_describe_the_same_hosts() -> None:
    """small-yi imports the YAML, the Ansible INI and the ssh_config the fleet writes to the same hosts,
    port and user; the INI and ssh_config also name the fleet's key."""
    files = ff.describe(_description(3, port=40123, user="dev"))
    parsed = {fmt: [host_dict(h) for h in parse_inventory(files[name], format=fmt, source=name)]
              for name, fmt in (("inventory.yaml", "yaml"), ("inventory.ini", "ini"), ("ssh_config", "ssh_config"))}
    for fmt, hosts in parsed.items():
        assert [(h["name"], h["address"], h["port"], h["user"]) for h in hosts] == [
            ("host-001", "127.0.1.1", 40123, "dev"), ("host-002", "127.0.1.2", 40123, "dev"),
            ("host-003", "127.0.1.3", 40123, "dev")], fmt
    assert {h["ssh"]["private_key"] for h in parsed["ini"]} == {str(KEY)}
    assert {(h["ssh"]["private_key"], h["ssh"]["known_hosts"]) for h in parsed["ssh_config"]} == {(str(KEY), str(KNOWN))}


def test_known_hosts_and_hosts_txt_list_every_host_on_the_port() -> None:
    files = ff.describe(_description(300, port=40123))
    known = files["known_hosts"].splitlines()
    assert len(known) == 300 and known[0] == f"[127.0.1.1]:40123 {HOST_KEY}"
    assert known[-1] == f"[127.0.2.46]:40123 {HOST_KEY}"
    assert files["hosts.txt"].splitlines()[-1] == "host-300 127.0.2.46"


def test_the_pyinfra_inventory_is_one_group_with_the_shared_data() -> None:
    """pyinfra reads a module: group ``fleet`` = (hosts, data), the key and known_hosts in the data."""
    scope: dict[str, object] = {}
    exec(compile(ff.describe(_description(2, port=40123))["inventory.py"], "inventory.py", "exec"), scope)
    hosts, data = scope["fleet"]  # type: ignore[misc]
    assert hosts == [("host-001", {"ssh_hostname": "127.0.1.1"}), ("host-002", {"ssh_hostname": "127.0.1.2"})]
    assert data == {"ssh_port": 40123, "ssh_user": "fleet", "ssh_key": str(KEY), "ssh_known_hosts_file": str(KNOWN)}


def test_an_empty_fleet_is_still_valid_yaml() -> None:
    assert yaml.safe_load(ff.describe(_description(0))["inventory.yaml"]) == {"group": "fleet", "hosts": []}


def test_sshd_admits_one_user_from_loopback_and_knows_its_version() -> None:
    """Only the login user from 127/8; PerSourcePenalties (OpenSSH 9.8+) off only where sshd knows it."""
    old = ff.sshd_config(Path("/srv/f"), port=40123, listen="0.0.0.0", user="dev", version=(9, 2))
    new = ff.sshd_config(Path("/srv/f"), port=40123, listen="0.0.0.0", user="dev", version=(10, 0))
    assert "AllowUsers dev@127.0.0.0/8\n" in old and "Port 40123\n" in old and "UsePAM no\n" in old
    assert 'AuthorizedKeysFile "/srv/f/authorized_keys"' in old
    assert "PerSourcePenalties" not in old and "PerSourcePenalties no\n" in new
    assert ff.sshd_version("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15") == (9, 2)
    assert ff.sshd_version("unknown option -- V") == (0, 0)


def test_no_sshd_is_a_clear_error_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without sshd, starting says which binary and which package, before making the folder."""
    monkeypatch.setenv("SMALLYI_SSHD", str(tmp_path / "no-sshd"))
    with pytest.raises(FleetError, match=r"no-sshd not found.*openssh-server"):
        Fleet.start(2, tmp_path / "fleet")
    assert not (tmp_path / "fleet").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder that belongs to another user needs root")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    """The keys are never written where someone else could swap them (a planted /tmp/small-yi-fleet)."""
    planted = tmp_path / "planted"
    planted.mkdir()
    os.chown(planted, 65534, 65534)
    with pytest.raises(FleetError, match="belongs to another user"):
        Fleet.start(2, planted, port=0)
    assert list(planted.iterdir()) == []
