"""How `small-yi run` ends: its exit status says what went wrong, and each distinct reason is printed once.

Against real hosts: the OpenSSH fleet for success, failure and timeout; addresses on loopback with a
closed port for unreachable hosts. In-process and with ``--server`` alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from smallyi.testing import Fleet
from support import Server, cli, start_server, write_config

pytestmark = pytest.mark.fleet

#: hosts on loopback addresses where nothing listens on port 9: refused at once
DEAD = 30


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, ssh_fleet: Fleet) -> Iterator[tuple[Path, Server]]:
    """A config with 4 fleet hosts (group `fleet`) and 30 dead ones (group `dead`), and a server on it."""
    tmp = tmp_path_factory.mktemp("outcome")
    cfg = write_config(tmp, extra=ssh_fleet.ssh_yaml())
    lines = ["group: fleet", "hosts:"]
    for name, addr in ssh_fleet.hosts[:4]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {ssh_fleet.port}"]
    (tmp / "fleet.yaml").write_text("\n".join(lines) + "\n")
    lines = ["group: dead", "hosts:"]
    for i in range(1, DEAD + 1):
        lines += [f"  - name: dead-{i:02d}", f"    address: 127.0.9.{i}", "    port: 9"]
    (tmp / "dead.yaml").write_text("\n".join(lines) + "\n")
    for f in ("fleet.yaml", "dead.yaml"):
        r = cli("hosts", "import", str(tmp / f), config=cfg)
        assert r.returncode == 0, r.stderr
    srv = start_server(cfg)
    yield cfg, srv
    srv.stop()


def _both(setup: tuple[Path, Server], *args: str) -> list[tuple[str, object]]:
    """The same `run` in-process and through the server: [(where, CompletedProcess)]."""
    cfg, srv = setup
    env = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login()}
    return [("local", cli("run", *args, config=cfg)), ("server", cli("run", *args, env=env))]


@pytest.mark.parametrize(("target", "cmd", "status"), [
    (("--group", "fleet"), "true", 0),
    (("--group", "fleet"), "exit 3", 1),
    (("--group", "fleet"), "sleep 30", 3),
    (("--hosts", "dead-01"), "true", 4),
    # several kinds at once: the worst wins, unreachable > timeout > failed
    (("--hosts", "host-001,host-002,dead-01"), 'case "$SSH_CONNECTION" in *" 127.0.1.1 "*) exit 3;; esac; sleep 30', 4),
    (("--hosts", "host-001,host-002"), 'case "$SSH_CONNECTION" in *" 127.0.1.1 "*) exit 3;; esac; sleep 30', 3),
])
def test_the_exit_status_tells_failed_timed_out_and_unreachable_apart(
        setup: tuple[Path, Server], target: tuple[str, ...], cmd: str, status: int) -> None:
    """0 all succeeded, 1 a command failed, 3 one timed out, 4 a host was unreachable; the same with
    --server, and with -o json."""
    for where, r in _both(setup, *target, "--cmd", cmd, "--timeout", "1s", "-q"):
        assert r.returncode == status, (where, r.stdout, r.stderr)  # type: ignore[attr-defined]
    if "," in target[1]:  # the mixed cases, once more as JSON
        cfg, _ = setup
        r = cli("run", *target, "--cmd", cmd, "--timeout", "1s", "-o", "json", config=cfg)
        assert r.returncode == status, r.stderr


def test_each_distinct_reason_is_printed_once(setup: tuple[Path, Server]) -> None:
    """30 hosts refused on their own addresses are one line naming 3 of them and how many more, the
    address shown as a placeholder; failed hosts another line; no per-host reason rows. The same
    through the server and in `tasks show`; -o json still gives every host's own reason."""
    expected = [
        "unreachable (30 hosts: dead-01, dead-02, dead-03 and 27 more): <address>:<port>: connection refused",
        "failed (4 hosts: host-001, host-002, host-003, host-004): exit status 3",
    ]
    for where, r in _both(setup, "--hosts", ",".join([f"dead-{i:02d}" for i in range(1, DEAD + 1)]
                                                     + [f"host-00{i}" for i in range(1, 5)]),
                          "--cmd", "exit 3", "-q"):
        out = r.stdout  # type: ignore[attr-defined]
        lines = out.splitlines()
        assert lines[:2] == expected, (where, out)
        assert re.fullmatch(r"task \d+ failed: failed 4, unreachable 30 \(34 hosts in [\d.]+s\)", lines[2]), out
        assert len(lines) == 3 and "connection refused" not in "".join(lines[2:]), out
    cfg, _ = setup
    task_id = re.search(r"task (\d+)", lines[2]).group(1)  # type: ignore[union-attr]
    shown = cli("tasks", "show", task_id, config=cfg).stdout
    assert shown.count("connection refused") == 1 and shown.count("exit status 3") == 1, shown
    assert "== dead-07 unreachable\n" in shown and "== host-002 failed exit 3\n" in shown
    assert shown.splitlines()[-3:-1] == expected
    doc = json.loads(cli("tasks", "show", task_id, "-o", "json", config=cfg).stdout)
    by_host = {r["host"]: r["reason"] for r in doc["results"]}
    assert len(by_host) == 34 and by_host["dead-07"] == "127.0.9.7:9: connection refused"


def test_the_live_lines_give_each_reason_once_too(setup: tuple[Path, Server]) -> None:
    """Without -q each host that did not succeed still gets its live line, but a reason already given
    (another host's address aside) is not repeated: `[dead-07]! unreachable (same reason as dead-02)`."""
    targets = ",".join([f"dead-{i:02d}" for i in range(1, DEAD + 1)] + [f"host-00{i}" for i in range(1, 5)])
    for where, r in _both(setup, "--hosts", targets, "--cmd", "exit 3"):
        out = r.stdout  # type: ignore[attr-defined]
        live = [line for line in out.splitlines() if line.startswith("[")]
        assert len(live) == DEAD + 4, (where, out)
        assert out.count("connection refused") == 2 and out.count("exit status 3") == 2, (where, out)  # live, summary
        assert sum("(same reason as dead-" in line for line in live) == DEAD - 1, (where, out)
        assert sum("(same reason as host-00" in line for line in live) == 3, (where, out)
