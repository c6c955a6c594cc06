"""Peers for ``bench.gitops_sync``: the same GitOps job done by Ansible (and pyinfra), side by side.

    python -m bench.gitops_sync --peers -n 100              # small-yi, ansible-playbook, pyinfra on 100 hosts
    python -m bench.gitops_sync --peers -n 100 --json       # the rows as one JSON document on stdout
    python -m bench.gitops_sync --peers --tools ansible --rows first_sync,unchanged_resync

The job, for every tool: render ``app.conf`` (``gitops_sync.TEMPLATE``, translated to the tool's
Jinja2 with the same variables: host name and address, workers, connections, upstreams, sites, the
commit's short id) for each of the N fleet hosts and write it to ``ROOT/<host>/app.conf`` with mode
0644, creating the host's folder, ``concurrency`` hosts at once (small-yi's ``gitops.concurrency`` =
Ansible's forks = pyinfra's ``--parallel``). Every tool runs as a whole process, timed like
``/usr/bin/time`` (wall, client user+sys CPU, peak RSS, from wait4):

- small-yi: ``small-yi sync apply -o json --config CONFIG`` (fetch the branch, render, read every
  host's file over SFTP, write the ones that differ); each run opens new connections.
- Ansible: ``ansible-playbook -f C`` of two tasks, ``file`` (state=directory) and ``template`` (mode
  0644), ``gather_facts: false``, pipelining on, ControlPersist=60s (``peers.ANSIBLE_ENV``), the commit
  id as an extra var. Each tool sequence starts with a fresh ControlPath folder, so its first sync
  opens new connections and its later rows reuse the master connections of the run before, as
  ControlPersist does for a user who runs playbooks back to back.
- pyinfra: ``pyinfra -y --parallel C inventory.py deploy.py`` (``files.directory``, ``files.template``).

Rows, each tool in turn on the same files: first sync (every host's folder removed: every file
written), unchanged re-sync (nothing written), one host's file edited on the host (1 written, N-1
compared), new commit (one host's variable changed; every file carries the commit id, so every file
written). Each run's counts are read from the tool's own report (small-yi's JSON record; Ansible's
per-task lines and recap; pyinfra's results table) and must be exactly the expected ones, so a failed
run cannot pass as a fast one. After each peer's first sync (round 1), ``small-yi sync plan`` must
find every file unchanged: the peer wrote, byte for byte and with the same mode and owner, what
small-yi writes.
"""

from __future__ import annotations

import compileall
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import fleet as bench_fleet
from bench import peers
from bench.gitops_sync import GROUP_VARS, TEMPLATE, addr_of, commit, name_of, write_hosts
from bench.proc import Stat, Timed, run_timed
from bench.smallyi import SMALL_YI
from smallyi.testing import Fleet

ROWS = ("first_sync", "unchanged_resync", "one_host_change", "new_commit")
LABELS = {
    "first_sync": "first sync (N written)",
    "unchanged_resync": "unchanged re-sync (0 written)",
    "one_host_change": "one host's file differs (1 written)",
    "new_commit": "new commit (N written)",
}
TOOLS = ("ansible", "pyinfra")
TIMEOUT = 1800.0


class PeerFailed(RuntimeError):
    """A tool's run did not do exactly the expected work."""


def translate(template: str, replacements: dict[str, str]) -> str:
    """``template`` with small-yi's variables replaced by the tool's; each one must occur."""
    for old, new in replacements.items():
        if old not in template:
            raise ValueError(f"{old!r} is not in the template any more: update the translation")
        template = template.replace(old, new)
    return template


#: small-yi's ``host``/``commit`` in Ansible's words (the other variables keep their names)
ANSIBLE_TEMPLATE = translate(TEMPLATE, {"{{ commit.short }}": "{{ commit_short }}",
                                        "{{ host.name }}": "{{ inventory_hostname }}",
                                        "{{ host.address }}": "{{ ansible_host }}"})
#: and in pyinfra's (``host`` is pyinfra's own Host; the deploy passes the rest as keyword arguments)
PYINFRA_TEMPLATE = translate(TEMPLATE, {"{{ commit.short }}": "{{ commit_short }}",
                                        "{{ host.address }}": "{{ address }}"})

PLAYBOOK = """\
- hosts: bench
  gather_facts: false
  tasks:
    - name: folder
      ansible.builtin.file: {path: "{{ root }}/{{ inventory_hostname }}", state: directory}
    - name: app.conf
      ansible.builtin.template: {src: app.conf.j2, dest: "{{ root }}/{{ inventory_hostname }}/app.conf", mode: "0644"}
"""

DEPLOY = """\
from pyinfra import host
from pyinfra.operations import files

d = host.data
folder = f"{d.root}/{host.name}"
files.directory(name="folder", path=folder)
files.template(name="app.conf", src="app.conf.j2", dest=f"{folder}/app.conf", mode="644",
               commit_short=d.commit_short, address=d.ssh_hostname, workers=d.workers,
               connections=d.connections, upstreams=d.upstreams, sites=d.sites)
"""


@dataclass
class Job:
    """The repository, config and files of one ``gitops_sync.prepare``, and where its branch is."""

    work: Path
    config: Path
    clone: Path
    n: int
    port: int
    fleet_dir: Path
    concurrency: int
    #: the first host's ``workers`` at the branch head (gitops_sync.run leaves it at 3)
    workers_of_first: int = 3

    @property
    def root(self) -> Path:
        return self.work / "files"

    @property
    def known_hosts(self) -> Path:
        return self.work / "known_hosts"

    @property
    def user(self) -> str:
        """The fleet's login user."""
        return Fleet.load(self.fleet_dir).user

    def head(self) -> str:
        """The branch head's short id, as small-yi's ``commit.short`` has it (10 hex digits)."""
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.clone, capture_output=True, text=True,
                             check=True).stdout.strip()
        return sha[:10]

    def wipe(self) -> None:
        """Every host's folder removed: the next sync writes every file and creates every folder."""
        for child in self.root.iterdir():
            shutil.rmtree(child)

    def edit_one(self) -> None:
        """The first host's file changed on the host, as a hand edit would (owner and mode kept)."""
        with (self.root / name_of(1) / "app.conf").open("a") as f:
            f.write("# edited on the host\n")

    def new_commit(self) -> None:
        """A commit that changes the first host's ``workers``."""
        self.workers_of_first += 1
        write_hosts(self.clone, self.n, self.port, workers_of_first=self.workers_of_first)
        commit(self.clone, f"bench-0001: workers {self.workers_of_first}")

    def host_vars(self, i: int) -> dict[str, Any]:
        return {"workers": self.workers_of_first} if i == 1 else {}


def _expect(n: int, written: int) -> dict[str, int]:
    return {k: v for k, v in (("changed", written), ("unchanged", n - written)) if v}


def _fail(tool: str, what: str, t: Timed) -> PeerFailed:
    return PeerFailed(f"{tool}: {what} (exit {t.rc}, {t.wall:.1f}s):\n{t.tail(2000)}")


class SmallYi:
    name = "small-yi"
    label = "small-yi sync apply"

    def command(self, job: Job) -> str:
        return "small-yi sync apply -o json --config CONFIG"

    def setup(self, job: Job) -> None:
        # as a package install does (this checkout runs with PYTHONDONTWRITEBYTECODE=1): see bench/__main__.py
        import smallyi

        compileall.compile_dir(str(Path(smallyi.__file__).parent), quiet=1)

    def sync(self, job: Job, written: int, first: bool, rnd: int) -> Timed:
        t = run_timed([SMALL_YI, "sync", "apply", "-o", "json", "--config", str(job.config)], timeout=TIMEOUT)
        files = self._files(t, "sync apply")
        if t.rc != 0 or files != _expect(job.n, written):
            raise _fail(self.name, f"expected files {_expect(job.n, written)}, got {files}", t)
        return t

    def plan_unchanged(self, job: Job, after: str) -> None:
        """``small-yi sync plan``: every file as the head renders it (``after`` wrote them)."""
        t = run_timed([SMALL_YI, "sync", "plan", "-o", "json", "--config", str(job.config)], timeout=TIMEOUT)
        files = self._files(t, "sync plan")
        if t.rc != 0 or files != {"unchanged": job.n}:
            raise _fail(self.name, f"after {after}: plan expected every file unchanged, got {files}", t)

    def _files(self, t: Timed, what: str) -> dict[str, int]:
        try:
            files: dict[str, int] = json.loads(t.out)["counts"].get("files", {})
        except (ValueError, KeyError, TypeError) as exc:
            raise _fail(self.name, f"{what}: no JSON record ({exc})", t) from None
        return files


class Ansible:
    name = "ansible"

    def __init__(self, concurrency: int, pipelining: bool = True) -> None:
        self.forks = concurrency
        self.pipelining = pipelining
        self.label = f"ansible-playbook -f {concurrency}"

    def dir(self, job: Job) -> Path:
        return job.work / "ansible"

    def env(self, job: Job, rnd: int) -> dict[str, str]:
        d = self.dir(job)
        return {**peers.ANSIBLE_ENV, "ANSIBLE_PIPELINING": str(self.pipelining), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_CONFIG": str(d / "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(d / f"cp{rnd}")}

    def command(self, job: Job) -> str:
        env = " ".join(f"{k}={v!r}" if " " in v else f"{k}={v}" for k, v in self.env(job, 1).items()
                       if k not in ("ANSIBLE_CONFIG", "ANSIBLE_SSH_CONTROL_PATH_DIR"))
        return (f"{env} $PEERS_VENV/bin/ansible-playbook -i inventory.yml sync.yml -f {self.forks} "
                "-e '{\"commit_short\": \"<head[:10]>\"}'")

    def setup(self, job: Job) -> None:
        d = self.dir(job)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "ansible.cfg").write_text("[defaults]\n")  # nothing from ~/.ansible.cfg or /etc/ansible
        (d / "sync.yml").write_text(PLAYBOOK)
        (d / "app.conf.j2").write_text(ANSIBLE_TEMPLATE)

    def _inventory(self, job: Job) -> Path:
        group = {"ansible_port": job.port, "ansible_user": job.user,
                 "ansible_ssh_private_key_file": str(job.fleet_dir / "id_ed25519"),
                 "ansible_ssh_common_args": f"-o UserKnownHostsFile={job.known_hosts} -o StrictHostKeyChecking=yes",
                 "ansible_python_interpreter": "/usr/bin/python3", "root": str(job.root), **GROUP_VARS}
        hosts = {name_of(i): {"ansible_host": addr_of(i), **job.host_vars(i)} for i in range(1, job.n + 1)}
        path = self.dir(job) / "inventory.yml"
        path.write_text(json.dumps({"bench": {"hosts": hosts, "vars": group}}, indent=1))  # JSON is YAML
        return path

    def sync(self, job: Job, written: int, first: bool, rnd: int) -> Timed:
        inv = self._inventory(job)
        argv = [str(peers.PEERS_VENV / "bin" / "ansible-playbook"), "-i", str(inv), "sync.yml",
                "-f", str(self.forks), "-e", json.dumps({"commit_short": job.head()})]
        t = run_timed(argv, env=self.env(job, rnd), cwd=self.dir(job), timeout=TIMEOUT)
        got = ansible_counts(t.out)
        want = {"folder": {"changed": job.n if first else 0, "ok": 0 if first else job.n},
                "app.conf": {"changed": written, "ok": job.n - written}}
        tasks = {k: {s: got["tasks"].get(k, {}).get(s, 0) for s in ("changed", "ok", "failed")} for k in want}
        bad = [f"{k}: {tasks[k]}" for k in want
               if tasks[k]["failed"] or any(tasks[k][s] != v for s, v in want[k].items())]
        recap = got["recap"]
        if len(recap) != job.n or any(r["unreachable"] or r["failed"] for r in recap.values()):
            bad.append(f"recap: {len(recap)} hosts, "
                       f"{sum(1 for r in recap.values() if r['unreachable'] or r['failed'])} failed or unreachable")
        if t.rc != 0 or bad:
            raise _fail(self.name, f"expected {want}, got {'; '.join(bad) or tasks}", t)
        return t


def ansible_counts(out: str) -> dict[str, Any]:
    """Per task, the hosts by outcome (``changed: [h]``, ``ok: [h]``, ``fatal: [h]``), and the recap."""
    tasks: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    recap: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        if m := re.match(r"TASK \[(.+?)\]", line):
            current = tasks.setdefault(m.group(1), {})
        elif line.startswith("PLAY RECAP"):
            current = None
        elif current is not None and (m := re.match(r"(changed|ok|fatal|failed|skipping): \[", line)):
            key = "failed" if m.group(1) in ("fatal", "failed") else m.group(1)
            current[key] = current.get(key, 0) + 1
        elif m := re.match(r"(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", line):
            recap[m.group(1)] = {"ok": int(m.group(2)), "changed": int(m.group(3)),
                                 "unreachable": int(m.group(4)), "failed": int(m.group(5))}
    return {"tasks": tasks, "recap": recap}


class Pyinfra:
    name = "pyinfra"

    def __init__(self, concurrency: int) -> None:
        self.parallel = concurrency
        self.label = f"pyinfra --parallel {concurrency}"

    def dir(self, job: Job) -> Path:
        return job.work / "pyinfra"

    def command(self, job: Job) -> str:
        return f"$PEERS_VENV/bin/pyinfra -y --parallel {self.parallel} inventory.py deploy.py"

    def setup(self, job: Job) -> None:
        d = self.dir(job)
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "deploy.py").write_text(DEPLOY)
        (d / "app.conf.j2").write_text(PYINFRA_TEMPLATE)

    def _inventory(self, job: Job) -> Path:
        # the commit id goes in the data, a string: ``--data`` would read an all-digit id as a number
        group = {"ssh_port": job.port, "ssh_user": job.user, "ssh_key": str(job.fleet_dir / "id_ed25519"),
                 "ssh_known_hosts_file": str(job.known_hosts), "root": str(job.root),
                 "commit_short": job.head(), **GROUP_VARS}
        hosts = "".join(f"    ({name_of(i)!r}, {({'ssh_hostname': addr_of(i), **job.host_vars(i)})!r}),\n"
                        for i in range(1, job.n + 1))
        path = self.dir(job) / "inventory.py"
        path.write_text(f"bench = ([\n{hosts}], {group!r})\n")
        return path

    def sync(self, job: Job, written: int, first: bool, rnd: int) -> Timed:
        inv = self._inventory(job)
        argv = [str(peers.PEERS_VENV / "bin" / "pyinfra"), "-y", "--parallel", str(self.parallel), str(inv),
                "deploy.py"]
        t = run_timed(argv, cwd=self.dir(job), timeout=TIMEOUT)
        got = pyinfra_counts(t.out + t.err)  # pyinfra logs to stderr
        want = {"folder": {"hosts": job.n, "success": job.n if first else 0, "error": 0,
                           "no_change": 0 if first else job.n},
                "app.conf": {"hosts": job.n, "success": written, "error": 0, "no_change": job.n - written}}
        if t.rc != 0 or any(got.get(k) != v for k, v in want.items()):
            raise _fail(self.name, f"expected {want}, got {got}", t)
        return t


def pyinfra_counts(out: str) -> dict[str, dict[str, int]]:
    """pyinfra's ``--> Results:`` table: per operation, hosts / success / error / no change ("-" = 0)."""
    rows: dict[str, dict[str, int]] = {}
    results = out.split("--> Results:", 1)
    if len(results) < 2:
        return rows
    for line in results[1].splitlines():
        if m := re.match(r"\s+(\S+)\s+(\d+)\s+(\d+|-)\s+(\d+|-)\s+(\d+|-)\s*$", line):
            n = [0 if v == "-" else int(v) for v in m.groups()[1:]]
            rows[m.group(1)] = dict(zip(("hosts", "success", "error", "no_change"), n, strict=True))
    return rows


Tool = SmallYi | Ansible | Pyinfra


def environment(fleet_dir: Path) -> dict[str, Any]:
    """When, on what, with which versions: what a reported table needs next to it."""
    import datetime
    import os
    import platform

    def out(argv: list[str]) -> str:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except OSError:
            return ""
        return (r.stdout or r.stderr).strip()

    versions: dict[str, str] = {}
    if peers.available():
        code = ("from importlib.metadata import PackageNotFoundError, version as v\n"
                "for p in ('ansible-core', 'pyinfra'):\n"
                "    try: print(p, v(p))\n"
                "    except PackageNotFoundError: print(p, 'not installed')")
        for line in out([str(peers.PEERS_VENV / "bin" / "python"), "-c", code]).splitlines():
            name, _, ver = line.partition(" ")
            versions[name] = ver
    try:
        delay_ms = bench_fleet.delay_ms(fleet_dir)
    except (OSError, ValueError, IndexError):
        delay_ms = -1
    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "python": platform.python_version(), "openssh": out(["ssh", "-V"]),
            "versions": versions, "fleet_delay_ms_each_way": delay_ms, "load_start": os.getloadavg()}


@dataclass
class Series:
    """One tool's timed runs of one row, over the rounds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def add(self, t: Timed) -> None:
        self.wall.append(t.wall)
        self.cpu.append(t.cpu)
        self.rss.append(t.rss_mb)


def sequence(tool: Tool, job: Job, rows: Sequence[str], rnd: int, out: dict[str, Series],
             check: SmallYi | None) -> None:
    """One tool's rows, in ``ROWS`` order (the first sync always first), on the files it wrote itself."""
    for row in ROWS:
        if row not in rows:
            continue
        written, first = job.n, False
        if row == "first_sync":
            job.wipe()
            first = True
        elif row == "unchanged_resync":
            written = 0
        elif row == "one_host_change":
            job.edit_one()
            written = 1
        else:
            job.new_commit()
        t = tool.sync(job, written, first, rnd)
        out.setdefault(row, Series()).add(t)
        print(f"  round {rnd}  {tool.label:<26} {LABELS[row]:<36} {t.wall:7.2f}s  cpu {t.cpu:6.2f}s",
              file=sys.stderr, flush=True)
        if row == "first_sync" and check is not None and rnd == 1:
            check.plan_unchanged(job, tool.label)


def compare(job: Job, tools: Sequence[str], rows: Sequence[str], rounds: int) -> dict[str, Any]:
    """Every tool's rows, ``rounds`` times (tools interleaved within a round), and the ratios to small-yi."""
    sy = SmallYi()
    peer_tools: list[Tool] = []
    for name in tools:
        if name == "ansible":
            peer_tools.append(Ansible(job.concurrency))
        elif name == "pyinfra":
            peer_tools.append(Pyinfra(job.concurrency))
        else:
            raise ValueError(f"unknown peer {name!r}; known: {', '.join(TOOLS)}")
    missing = [t.name for t in peer_tools if not peers.have("ansible-playbook" if t.name == "ansible" else t.name)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not in {peers.PEERS_VENV}: run `python -m bench.setup_peers`")
    every: list[Tool] = [sy, *peer_tools]
    for t in every:
        t.setup(job)
    series: dict[str, dict[str, Series]] = {t.name: {} for t in every}
    for rnd in range(1, rounds + 1):
        for t in every:
            sequence(t, job, rows, rnd, series[t.name], sy if t is not sy else None)
    return report(job, every, rows, series)


def report(job: Job, tools: Sequence[Tool], rows: Sequence[str], series: dict[str, dict[str, Series]]
           ) -> dict[str, Any]:
    sy = series["small-yi"]
    out: dict[str, Any] = {"hosts": job.n, "concurrency": job.concurrency,
                           "tools": {t.name: {"label": t.label, "command": t.command(job)} for t in tools},
                           "rows": {}}
    for row in rows:
        entry: dict[str, Any] = {"label": LABELS[row]}
        for t in tools:
            s = series[t.name][row]
            e: dict[str, Any] = {"wall": s.wall, "wall_median": round(Stat.of(s.wall).median, 3),
                                 "cpu_median": round(Stat.of(s.cpu).median, 3),
                                 "rss_mb_max": round(max(s.rss), 1)}
            if t.name != "small-yi":
                ratios = [p / q for p, q in zip(s.wall, sy[row].wall, strict=True)]
                e["ratio_to_small_yi"] = [round(r, 2) for r in ratios]
                e["ratio_median"] = round(Stat.of(ratios).median, 2)
            entry[t.name] = e
        out["rows"][row] = entry
    return out


def table(result: dict[str, Any]) -> str:
    """A markdown table: per row, small-yi's wall, then each peer's wall and its ratio to small-yi's."""
    names = list(result["tools"])
    peer_names = names[1:]
    head = ["row", f"{result['tools']['small-yi']['label']} s"]
    for p in peer_names:
        head += [f"{result['tools'][p]['label']} s", f"{p} / small-yi"]
    head += ["client CPU s (" + ", ".join(names) + ")"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in result["rows"].values():
        cells = [entry["label"], _fmt(entry["small-yi"]["wall"])]
        for p in peer_names:
            cells += [_fmt(entry[p]["wall"]), _fmt(entry[p]["ratio_to_small_yi"], "x", 1)]
        cells.append(" / ".join(f"{entry[n]['cpu_median']:.1f}" for n in names))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(values: Sequence[float], unit: str = "", digits: int = 2) -> str:
    s = Stat.of(values)
    if s.n <= 1 or s.lo == s.hi:
        return f"{s.median:.{digits}f}{unit}"
    return f"{s.median:.{digits}f}{unit} ({s.lo:.{digits}f}-{s.hi:.{digits}f})"
