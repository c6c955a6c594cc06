"""The original SOP example on the real OpenSSH fleet, through `small-yi sop run`, with a local ticket service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_notify import Receiver

from smallyi.testing import Fleet
from support import cli, write_config

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


def test_template_files_over_a_mebibyte_land_on_fleet_hosts(fleet_cfg: Path) -> None:
    """A template rendering 1.2 MiB per host (25 times the old command-borne limit) is written whole over SFTP,
    atomically (no temporary file left), with the mode asked, replacing the file that was there."""
    import hashlib
    import os

    folder = Path(f"/tmp/smallyi-sop-big-{uuid.uuid4().hex[:8]}")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # the fleet's login user writes here
    try:
        (folder / "host-002.dat").write_text("old\n")
        blob = "".join(f"line {i:06d} of a large rendered file\n" for i in range(10_000))  # 390 KB
        source = (f"vars: {{blob: {json.dumps(blob)}}}\n"
                  "steps:\n  - id: big\n    type: template\n    target: {group: fleet}\n"
                  f"    dest: \"{folder}/{{{{ .host.name }}}}.dat\"\n    mode: \"0640\"\n"
                  "    content: \"{{ .vars.blob }}{{ .vars.blob }}{{ .vars.blob }}# {{ .host.name }}\\n\"\n")
        code, doc, err = run_sop(fleet_cfg, source)
        assert code == 0, err
        result = doc["steps"][0]["result"]
        assert result["ok_hosts"] == ["host-001", "host-002", "host-003"] and result["task_ids"] == []
        for name in result["ok_hosts"]:
            want = (blob * 3 + f"# {name}\n").encode()
            path = folder / f"{name}.dat"
            assert len(want) > 1024 * 1024 and path.read_bytes() == want
            assert oct(path.stat().st_mode & 0o777) == "0o640"
            digest = hashlib.sha256(want).hexdigest()[:16]
            assert result["hosts"][name]["output"] == f"wrote {path} ({len(want)} bytes, sha256 {digest})"
        assert sorted(os.listdir(folder)) == ["host-001.dat", "host-002.dat", "host-003.dat"]
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def test_a_file_step_that_cannot_write_fails_on_that_host_only(fleet_cfg: Path) -> None:
    """A destination folder the login user cannot write fails that host with the SFTP reason; the others succeed."""
    folder = Path(f"/tmp/smallyi-sop-ro-{uuid.uuid4().hex[:8]}")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    (folder / "host-003").mkdir(mode=0o555)
    try:
        source = ("steps:\n  - id: put\n    type: file\n    target: {group: fleet}\n"
                  f"    dest: \"{folder}/{{{{ .host.name }}}}.txt\"\n    content: \"plain\\n\"\n"
                  "  - id: put_sub\n    type: template\n    needs: []\n    target: {hosts: [host-003]}\n"
                  f"    dest: \"{folder}/host-003/x.txt\"\n    content: \"x\"\n    on_failure: continue\n")
        code, doc, err = run_sop(fleet_cfg, source)
        assert code == 0, err
        steps = {s["id"]: s for s in doc["steps"]}
        assert steps["put"]["status"] == "success"
        assert (folder / "host-001.txt").read_text() == "plain\n"
        sub = steps["put_sub"]
        assert sub["status"] == "failed" and sub["result"]["failed_hosts"] == ["host-003"]
        assert "x.txt" in sub["result"]["hosts"]["host-003"]["reason"]
        assert not (folder / "host-003" / "x.txt").exists()
    finally:
        import shutil

        (folder / "host-003").chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)
