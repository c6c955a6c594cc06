"""The original SOP example on the real OpenSSH fleet, through `small-yi sop run`, with a local ticket service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_notify import Receiver

from support import Fleet, cli, write_config

pytestmark = [pytest.mark.fleet, pytest.mark.slow]

ORIGINAL = """\
steps:
  - id: check_disk
    type: exec
    cmd: "df -h | grep '/$'"
    timeout: 10
  - id: alert_if_full
    type: if
    condition: "{{ .output | contains '95%' }}"
    then: { action: "create_ticket", template: "disk-full-high" }
"""


@pytest.fixture
def tickets() -> Iterator[Receiver]:
    r = Receiver(answer=lambda seen: (201, {"data": {"ticket": {"id": f"OPS-{len(r.seen)}"}},
                                            "link": f"https://tickets.example/OPS-{len(r.seen)}"}))
    yield r
    r.close()


@pytest.fixture
def fleet_cfg(tmp_path: Path, ssh_fleet: Fleet, tickets: Receiver) -> Path:
    """Three fleet hosts in group `fleet`; tickets go to the local ticket service (id and URL at custom paths)."""
    extra = ssh_fleet.ssh_yaml() + (
        f"tickets:\n  url: {tickets.url}/api/v2/issues\n  id_field: data.ticket.id\n  url_field: link\n"
        "  templates:\n    disk-full-high:\n      sla: P1\n      body:\n"
        "        summary: \"[{{ sla }}] disk almost full on {{ hosts_text }}\"\n"
        "        reporter: \"{{ requester }}\"\n        assets: \"{{ hosts }}\"\n        evidence: \"{{ output }}\"\n")
    cfg = write_config(tmp_path, extra=extra)
    lines = ["group: fleet", "hosts:"]
    for name, addr in ssh_fleet.hosts[:3]:
        lines += [f"  - name: {name}", f"    address: {addr}", f"    port: {ssh_fleet.port}"]
    (tmp_path / "inventory.yaml").write_text("\n".join(lines) + "\n")
    r = cli("hosts", "import", str(tmp_path / "inventory.yaml"), config=cfg)
    assert r.returncode == 0, r.stderr
    return cfg


def run_sop(cfg: Path, source: str, *args: str) -> tuple[int, dict, str]:
    path = cfg.parent / f"sop-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(source)
    r = cli("sop", "run", str(path), *args, "--output", "json", config=cfg, timeout=180)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else {}, r.stderr


def test_the_original_example_as_written(fleet_cfg: Path, tickets: Receiver) -> None:
    """The original YAML runs on three fleet hosts: each host's df line is recorded; a ticket only for a full disk."""
    code, doc, err = run_sop(fleet_cfg, ORIGINAL, "--group", "fleet")
    assert code == 0, err
    steps = {s["id"]: s for s in doc["steps"]}
    hosts = steps["check_disk"]["result"]["hosts"]
    assert sorted(hosts) == ["host-001", "host-002", "host-003"]
    assert all(h["status"] == "success" and h["output"].endswith("/") for h in hosts.values())
    full = [name for name, h in hosts.items() if "95%" in h["output"]]
    assert steps["alert_if_full"]["result"]["matched_hosts"] == full
    assert len(tickets.seen) == (1 if full else 0)


def test_a_full_disk_opens_a_ticket(fleet_cfg: Path, ssh_fleet: Fleet, tickets: Receiver) -> None:
    """host-001's command prints a 95% line: one ticket for host-001, with requester, SLA and evidence; id and URL kept."""
    addr = dict(ssh_fleet.hosts)["host-001"]
    faked = ORIGINAL.replace(
        "cmd: \"df -h | grep '/$'\"",
        f"cmd: \"case \\\"$SSH_CONNECTION\\\" in *' {addr} '*) echo '/dev/sda1  50G  48G  2.0G  95% /';; "
        "*) df -h | grep '/$';; esac\"")
    code, doc, err = run_sop(fleet_cfg, faked, "--group", "fleet")
    assert code == 0, err
    decided = {s["id"]: s for s in doc["steps"]}["alert_if_full"]["result"]
    assert decided["matched_hosts"] == ["host-001"]
    assert decided["tickets"] == [{"ticket_id": "OPS-1", "url": "https://tickets.example/OPS-1", "hosts": ["host-001"]}]
    sent = tickets.seen[0]
    assert sent.path == "/api/v2/issues"
    body = sent.json()
    assert body["summary"] == "[P1] disk almost full on host-001" and body["assets"] == ["host-001"]
    assert body["reporter"].startswith("cli:") and "95%" in body["evidence"]


def test_a_dag_on_the_fleet(fleet_cfg: Path) -> None:
    """Branches run on different hosts in parallel; a template lands per host; the join reads every branch."""
    folder = f"/tmp/smallyi-sop-{uuid.uuid4().hex[:8]}"
    source = f"""
vars: {{folder: {folder}}}
steps:
  - {{id: prepare, type: exec, target: {{hosts: [host-001]}}, cmd: "mkdir -p {{{{ .vars.folder }}}}"}}
  - {{id: one, type: exec, needs: [prepare], target: {{hosts: [host-002]}}, cmd: "sleep 1; hostname -I | wc -w"}}
  - {{id: two, type: exec, needs: [prepare], target: {{hosts: [host-003]}}, cmd: "sleep 1; echo two"}}
  - id: conf
    type: template
    needs: [prepare]
    target: {{group: fleet}}
    dest: "{{{{ .vars.folder }}}}/{{{{ .host.name }}}}.conf"
    content: "name={{{{ .host.name }}}} address={{{{ .host.address }}}}\\n"
  - id: check
    type: exec
    needs: [one, two, conf]
    target: {{hosts: [host-001]}}
    cmd: "cat {{{{ .vars.folder }}}}/*.conf; rm -rf {{{{ .vars.folder }}}}"
"""
    code, doc, err = run_sop(fleet_cfg, source)
    assert code == 0, err
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["one"]["started_at"] < steps["two"]["finished_at"] and steps["two"]["started_at"] < \
        steps["one"]["finished_at"]
    lines = steps["check"]["result"]["output"].splitlines()
    assert [ln.split()[0] for ln in lines] == ["name=host-001", "name=host-002", "name=host-003"]
    assert steps["conf"]["result"]["ok_hosts"] == ["host-001", "host-002", "host-003"]
