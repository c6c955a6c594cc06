"""GitOps benchmark: one template to N hosts (default 500): first sync, unchanged re-sync, one-host change.

    python -m bench.gitops_sync                 # 500 hosts on the running fleet in /tmp/small-yi-fleet
    python -m bench.gitops_sync -n 50 --json    # fewer hosts; one JSON document on stdout
    python -m bench.gitops_sync --fleet-dir /tmp/small-yi-bench/fleet   # another running fleet
    python -m bench.gitops_sync --peers -n 100 --rounds 3   # then small-yi's CLI, Ansible and pyinfra
                                                            # side by side (bench/gitops_peers.py)

From the harness: ``config, clone, port = prepare(work, n, fleet_dir)`` then
``rows = await run(config, clone, n, port)``.

It needs an OpenSSH fleet running (``python -m smallyi.testing fleet up 500``; it only reads the
fleet's port, user, key and host key, and never starts, restarts or stops it). Every fleet host is one sshd on this machine listening on all of 127/8, so the
N hosts are N loopback addresses (127.0.1.1, 127.0.1.2, ...) with a known_hosts file of our own;
each host writes under its own folder. In-process, like ``small-yi sync apply``: a real bare git
repository, a real SQLite database, SFTP over the engine's pool.

Rows: render only (parse + render every host, no I/O, in this process; and the same template written
as a Go template, ``render only (go)``, checked to give the same files); the same in the rendering
process that syncs use (``gitops.worker``: started cold, then warm); first sync (new connections, every file
written); unchanged re-sync on the warm pool (every file fetched and compared, none written);
unchanged re-sync cold (a new process' worth of connections); one host's variable changed (one file
written, N-1 compared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from smallyi.testing import Fleet, FleetError, fleet_files
from smallyi.testing.fleet import DEMO_DIR

FLEET_DIR = Path(os.environ.get("SMALLYI_FLEET_DIR", DEMO_DIR))
TEMPLATE = """\
# {{ commit.short }} {{ host.name }} ({{ host.address }})
worker_processes {{ workers }};
events { worker_connections {{ connections }}; }
http {
    upstream app {
{% for u in upstreams %}        server {{ u }} weight={{ loop.index }};
{% endfor %}    }
{% for site in sites %}    server {
        listen {{ 8000 + loop.index }};
        server_name {{ site }}.{{ host.name }}.internal;
        location / { proxy_pass http://app; }
    }
{% endfor %}}
"""
#: the same template as a Go template (the original's syntax), for the ``render only (go)`` row
GO_TEMPLATE = """\
# {{ .commit.short }} {{ .host.name }} ({{ .host.address }})
worker_processes {{ .workers }};
events { worker_connections {{ .connections }}; }
http {
    upstream app {
{{ range $i, $u := .upstreams }}        server {{ $u }} weight={{ add $i 1 }};
{{ end }}    }
{{ range $i, $site := .sites }}    server {
        listen {{ add 8001 $i }};
        server_name {{ $site }}.{{ $.host.name }}.internal;
        location / { proxy_pass http://app; }
    }
{{ end }}}
"""


def addr_of(i: int) -> str:
    """As the fleet numbers its hosts: 1 → 127.0.1.1, 254 → 127.0.1.254, 255 → 127.0.2.1."""
    return fleet_files.address(i)


def git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def prepare(work: Path, n: int, fleet_dir: Path = FLEET_DIR, concurrency: int = 0) -> tuple[Path, Path, int]:
    """The repository (bare + clone), the hosts' folder and a config file for the fleet in ``fleet_dir``.

    ``concurrency`` > 0 sets ``gitops.concurrency`` (hosts synced at once); 0 leaves small-yi's default
    (``execution.default_concurrency``, 200). Returns (config, clone, the fleet's port) for :func:`run`.
    """
    try:
        fleet = Fleet.load(fleet_dir)
    except FleetError as exc:
        sys.exit(exc.message)
    if not fleet.running():
        sys.exit(f"the fleet is not running: start it with `python -m smallyi.testing fleet up {n} {fleet_dir}`")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = work / "files"
    root.mkdir()
    root.chmod(0o777)  # the fleet's login user writes here
    work.chmod(0o755)
    port = fleet.port
    host_key = " ".join((fleet_dir / "host_ed25519.pub").read_text().split()[:2])
    (work / "known_hosts").write_text("".join(f"[{addr_of(i)}]:{port} {host_key}\n" for i in range(1, n + 1)))
    bare, clone = work / "origin.git", work / "clone"
    git("init", "-q", "--bare", "--initial-branch=main", str(bare), cwd=work)
    git("clone", "-q", str(bare), str(clone), cwd=work)
    git("checkout", "-q", "-b", "main", cwd=clone)
    write_hosts(clone, n, port, workers_of_first=2)
    (clone / "templates").mkdir()
    (clone / "templates" / "app.conf.j2").write_text(TEMPLATE)
    (clone / "sync.yaml").write_text(
        "files:\n  - template: app.conf.j2\n"
        f"    path: \"{root}/{{{{ host.name }}}}/app.conf\"\n"
        "    target: {group: bench}\n    mode: \"0644\"\n    mkdir: true\n")
    commit(clone, "bench config")
    config = work / "config.yaml"
    config.write_text(
        f"database:\n  driver: sqlite3\n  source: {work}/db.sqlite\n"
        f"auth:\n  users: []\nsecrets:\n  key_file: {work}/master.key\n"
        f"ssh:\n  user: {fleet.user}\n  private_key: {fleet.key}\n  known_hosts: {work}/known_hosts\n"
        f"gitops:\n  repo: {bare}\n  branch: main\n  drift_interval: 0s\n  timeout: 60s\n"
        f"  workdir: {work}/gitops\n" + (f"  concurrency: {concurrency}\n" if concurrency > 0 else ""))
    return config, clone, port


#: the group's variables every host renders with (the peers of ``bench.gitops_peers`` get the same)
GROUP_VARS: dict[str, Any] = {"workers": 2, "connections": 1024,
                              "upstreams": ["10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.3:9000"],
                              "sites": ["www", "api", "static", "admin"]}


def name_of(i: int) -> str:
    return f"bench-{i:04d}"


def write_hosts(clone: Path, n: int, port: int, *, workers_of_first: int) -> None:
    """``hosts/bench.yaml``: N hosts in group ``bench`` (logging in as the config's ``ssh.user``); the first
    one's ``workers`` is its own variable."""
    lines = ["group: bench", "vars:", *(f"  {k}: {json.dumps(v)}" for k, v in GROUP_VARS.items()), "hosts:"]
    for i in range(1, n + 1):
        lines += [f"  - name: {name_of(i)}", f"    address: {addr_of(i)}", f"    port: {port}"]
        if i == 1:
            lines.append(f"    vars: {{workers: {workers_of_first}}}")
    (clone / "hosts").mkdir(exist_ok=True)
    (clone / "hosts" / "bench.yaml").write_text("\n".join(lines) + "\n")


def commit(clone: Path, message: str) -> None:
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", message, cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)


async def run(config: Path, clone: Path, n: int, port: int) -> dict[str, Any]:
    """The rows (seconds, files by outcome, hosts/s, connections opened), also printed to stderr."""
    from smallyi.config import load_settings
    from smallyi.gitops.render import render_commit
    from smallyi.runtime import Runtime

    settings = load_settings(config)
    rows: dict[str, Any] = {"hosts": n}

    async def timed(name: str, rt: Runtime, expect: dict[str, int]) -> None:
        assert rt.gitops is not None
        t0 = time.perf_counter()
        record = await rt.gitops.sync(trigger="cli", user="bench")
        took = time.perf_counter() - t0
        files = record["counts"].get("files", {})
        if files != expect:
            raise SystemExit(f"{name}: expected {expect}, got {files}: {record['reason']}")
        ssh = rt.engine.stats()["connectors"]["ssh"]
        rows[name] = {"seconds": round(took, 3), "files": files, "hosts_per_second": round(n / took, 1),
                      "connections_opened": ssh.get("opened", 0)}
        print(f"  {name:<22} {took:7.2f}s  {n / took:7.1f} hosts/s  {files}", file=sys.stderr)

    rt = await Runtime.open(settings, kind="cli")
    try:
        assert rt.gitops is not None and rt.gitops.repo is not None
        head = await rt.gitops.repo.fetch()
        snapshot = await rt.gitops.repo.snapshot(head)
        t0 = time.perf_counter()
        desired = render_commit(snapshot)
        rows["render_only"] = {"seconds": round(time.perf_counter() - t0, 3), "files": len(desired.files)}
        print(f"  {'render only':<22} {rows['render_only']['seconds']:7.2f}s  ({len(desired.files)} files)",
              file=sys.stderr)
        go = as_go(snapshot)
        t0 = time.perf_counter()
        go_desired = render_commit(go)
        rows["render_only_go"] = {"seconds": round(time.perf_counter() - t0, 3), "files": len(go_desired.files)}
        if [f.content for f in go_desired.files] != [f.content for f in desired.files]:
            raise SystemExit("render only (go): the Go template's files differ from the Jinja2 template's")
        print(f"  {'render only (go)':<22} {rows['render_only_go']['seconds']:7.2f}s  (the same files)", file=sys.stderr)
        for row in ("render_worker_cold", "render_worker_warm"):
            t0 = time.perf_counter()
            await rt.gitops.worker.call(render_commit, snapshot, timeout=60)
            rows[row] = {"seconds": round(time.perf_counter() - t0, 3)}
            print(f"  {row.replace('_', ' '):<22} {rows[row]['seconds']:7.2f}s", file=sys.stderr)
        await timed("first_sync", rt, {"changed": n})
        await timed("unchanged_resync_warm", rt, {"unchanged": n})
    finally:
        await rt.close()
    rt = await Runtime.open(settings, kind="cli")
    try:
        await timed("unchanged_resync_cold", rt, {"unchanged": n})
        write_hosts(clone, n, port, workers_of_first=3)
        commit(clone, "one host changes")
        # every file carries the commit id in its first line, so all change: that is the "new commit" row
        await timed("new_commit_all_change", rt, {"changed": n})
    finally:
        await rt.close()
    return rows


def as_go(snapshot: Any) -> Any:
    """The commit with its template written as a Go template (``.tmpl``), the path too."""
    from smallyi.gitops.snapshot import Snapshot

    files = {k: v for k, v in snapshot.files.items() if k != "templates/app.conf.j2"}
    files["templates/app.conf.tmpl"] = GO_TEMPLATE.encode()
    files["sync.yaml"] = files["sync.yaml"].replace(b"app.conf.j2", b"app.conf.tmpl").replace(
        b"{{ host.name }}", b"{{ .host.name }}")
    return Snapshot(snapshot.commit, files)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.gitops_sync", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, help="hosts (default 500; with --peers 100)")
    p.add_argument("--work", type=Path, default=Path("/tmp/small-yi-bench-gitops"), help="scratch folder")
    p.add_argument("--fleet-dir", type=Path, default=FLEET_DIR, help="the running fleet's folder")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON document on stdout")
    p.add_argument("--concurrency", type=int, default=0,
                   help="gitops.concurrency (0: small-yi's default, 200; with --peers: min(N, 100)), "
                        "also the peers' forks / --parallel")
    p.add_argument("--peers", action="store_true",
                   help="then the same job by small-yi's CLI and its peers, side by side (bench/gitops_peers.py)")
    p.add_argument("--tools", default="ansible,pyinfra", help="--peers: the peers (ansible, pyinfra)")
    p.add_argument("--rows", default="first_sync,unchanged_resync,one_host_change,new_commit",
                   help="--peers: the rows (the first sync always runs)")
    p.add_argument("--rounds", type=int, default=1, help="--peers: rounds, tools interleaved (default 1)")
    a = p.parse_args(argv)
    n = a.n or (100 if a.peers else 500)
    concurrency = a.concurrency or (min(n, 100) if a.peers else 0)
    print(f"gitops: one template to {n} hosts over SFTP (fleet in {a.fleet_dir}"
          + (f", concurrency {concurrency}" if concurrency else "") + ")", file=sys.stderr)
    config, clone, port = prepare(a.work, n, a.fleet_dir, concurrency)
    rows = asyncio.run(run(config, clone, n, port))
    if not a.peers:
        if a.json:
            print(json.dumps(rows, indent=2))
        shutil.rmtree(a.work, ignore_errors=True)
        return
    from bench import gitops_peers

    chosen = ["first_sync", *(r.strip() for r in a.rows.split(",") if r.strip() and r.strip() != "first_sync")]
    unknown = set(chosen) - set(gitops_peers.ROWS)
    if unknown:
        p.error(f"unknown rows: {', '.join(sorted(unknown))}; known: {', '.join(gitops_peers.ROWS)}")
    job = gitops_peers.Job(a.work, config, clone, n, port, a.fleet_dir, concurrency)
    started = time.time()
    meta = gitops_peers.environment(a.fleet_dir)
    result = gitops_peers.compare(job, [t.strip() for t in a.tools.split(",") if t.strip()], chosen, a.rounds)
    result.update(meta, minutes=round((time.time() - started) / 60, 1), load_end=os.getloadavg(),
                  in_process=rows)
    text = gitops_peers.table(result)
    print(text, file=sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(result, indent=2))
    shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
