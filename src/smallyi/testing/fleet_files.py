"""What an OpenSSH fleet's folder holds, as text: pure functions of its hosts, port, user and keys.

Host ``i`` (from 1) is ``host-00i`` at a 127/8 address: 1 → 127.0.1.1, 254 → 127.0.1.254,
255 → 127.0.2.1, ... Every 127/8 address is this machine's loopback, so one sshd listening on
0.0.0.0 answers on all of them, and each host still has an address of its own (``$SSH_CONNECTION``
tells them apart, pools key on it).

The inventories are the ones each tool reads as it is: ``inventory.yaml`` (small-yi), ``inventory.ini``
(Ansible), ``inventory.py`` (pyinfra), ``ssh_config`` (``ssh -F``, and ``small-yi hosts import``),
``hosts.txt`` (name and address, for scripts) and ``fleet.json`` (port, user, key, known_hosts: what
a script needs to connect).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

#: hosts per third octet (x.y.z.1 .. x.y.z.254), and the most hosts (127.0.1.1 .. 127.0.254.254)
PER_OCTET = 254
MAX_HOSTS = PER_OCTET * PER_OCTET
GROUP = "fleet"
#: the files :func:`describe` writes, besides the keys and sshd's own
DESCRIPTION = ("hosts.txt", "known_hosts", "inventory.yaml", "inventory.ini", "inventory.py", "ssh_config",
               "fleet.json")


def address(i: int) -> str:
    """Host ``i``'s address (``i`` from 1)."""
    if not 1 <= i <= MAX_HOSTS:
        raise ValueError(f"host number {i} is out of 1..{MAX_HOSTS}")
    i -= 1
    return f"127.0.{1 + i // PER_OCTET}.{1 + i % PER_OCTET}"


def host_name(i: int) -> str:
    return f"host-{i:03d}"


def hosts(n: int) -> list[tuple[str, str]]:
    """The first ``n`` hosts as (name, address)."""
    if not 0 <= n <= MAX_HOSTS:
        raise ValueError(f"a fleet has 0..{MAX_HOSTS} hosts, not {n}")
    return [(host_name(i), address(i)) for i in range(1, n + 1)]


@dataclass(frozen=True)
class Description:
    """What clients are told: the hosts, the port they dial, the login user, the key files."""

    hosts: tuple[tuple[str, str], ...]
    port: int
    user: str
    key: Path
    known_hosts: Path
    #: the host key's public line, ``ssh-ed25519 AAAA...``
    host_key: str


def describe(d: Description) -> dict[str, str]:
    """File name → text of every description file."""
    return {
        "hosts.txt": "".join(f"{name} {addr}\n" for name, addr in d.hosts),
        "known_hosts": "".join(f"[{addr}]:{d.port} {d.host_key}\n" for _, addr in d.hosts),
        "inventory.yaml": _yaml(d),
        "inventory.ini": _ini(d),
        "inventory.py": _pyinfra(d),
        "ssh_config": _ssh_config(d),
        "fleet.json": json.dumps({"port": d.port, "user": d.user, "hosts": len(d.hosts), "key": str(d.key),
                                  "known_hosts": str(d.known_hosts)}, indent=2) + "\n",
    }


def _yaml(d: Description) -> str:
    lines = ["# small-yi inventory: small-yi hosts import inventory.yaml", f"group: {GROUP}", "hosts:"]
    for name, addr in d.hosts:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {d.port}", f"    user: {d.user}"]
    if not d.hosts:
        lines[-1] = "hosts: []"
    return "\n".join(lines) + "\n"


def _ini(d: Description) -> str:
    return "".join([
        f"[{GROUP}]\n",
        *(f"{name} ansible_host={addr}\n" for name, addr in d.hosts),
        f"[{GROUP}:vars]\n",
        f"ansible_port={d.port}\n",
        f"ansible_user={d.user}\n",
        f"ansible_ssh_private_key_file={d.key}\n",
        f"ansible_ssh_common_args=-o UserKnownHostsFile={d.known_hosts} -o StrictHostKeyChecking=yes\n",
        "ansible_python_interpreter=/usr/bin/python3\n",
    ])


def _pyinfra(d: Description) -> str:
    data = {"ssh_port": d.port, "ssh_user": d.user, "ssh_key": str(d.key),
            "ssh_known_hosts_file": str(d.known_hosts)}
    rows = "".join(f"        ({name!r}, {{'ssh_hostname': {addr!r}}}),\n" for name, addr in d.hosts)
    return (f'"""pyinfra inventory: group {GROUP!r} is (hosts, data every host shares)."""\n\n'
            f"{GROUP} = (\n    [\n{rows}    ],\n    {data!r},\n)\n")


def _ssh_config(d: Description) -> str:
    blocks = [f"Host {name}\n  HostName {addr}\n" for name, addr in d.hosts]
    blocks.append(f'Host *\n  User {d.user}\n  Port {d.port}\n  IdentityFile "{d.key}"\n  IdentitiesOnly yes\n'
                  f'  UserKnownHostsFile "{d.known_hosts}"\n  StrictHostKeyChecking yes\n  BatchMode yes\n')
    return "# ssh -F ssh_config host-001   (or an address)\n" + "".join(blocks)


def sshd_config(directory: Path, *, port: int, listen: str, user: str, version: tuple[int, int]) -> str:
    """The fleet's sshd: its files in ``directory``, one login user, loopback clients, that key only.

    ``version`` is sshd's (major, minor): options newer than Debian 12's OpenSSH 9.2 are added only
    where sshd knows them (an unknown keyword is fatal).
    """
    extra = ""
    if version >= (9, 8):
        # 9.8+ penalises a source address for failed logins; every test client is 127.0.0.1 and some
        # fail on purpose (wrong key, unknown host key), so the penalties would refuse the next tests
        extra = "PerSourcePenalties no\n"
    return f"""\
# sshd of small-yi's OpenSSH test fleet: every path is this folder's
Port {port}
ListenAddress {listen}
HostKey "{directory / 'host_ed25519'}"
PidFile "{directory / 'sshd.pid'}"
AuthorizedKeysFile "{directory / 'authorized_keys'}"
# one login user, from loopback only, with the fleet's key only
AllowUsers {user}@127.0.0.0/8
PermitRootLogin no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# the key files live in a temporary folder, not in a home with sshd's ownership rules
StrictModes no
UseDNS no
# the benchmark and the 1000-host browser test open every connection at once; the default
# MaxStartups 10:30:100 would drop most of them
MaxStartups 4000:30:8000
MaxSessions 100
LoginGraceTime 60
Subsystem sftp internal-sftp
LogLevel ERROR
{extra}"""


def sshd_version(text: str) -> tuple[int, int]:
    """(major, minor) from ``sshd -V``'s output (``OpenSSH_9.2p1 ...``); (0, 0) when absent."""
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
