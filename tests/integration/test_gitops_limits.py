"""Rendering runs in its own process under gitops.render_timeout, render_memory and render_max_output: a
template that loops, allocates or prints without end is stopped and reported, and the server (its event
loop, its memory) does not notice. In-process with real git and a real database, then a real server."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_gitops_service import SECRET, Repo, files_of, hosts_yaml, manifest, push_body

from smallyi.config import parse_settings
from smallyi.errors import TemplateError
from smallyi.execution.connectors.local import LocalConnector
from smallyi.gitops import webhook, worker
from smallyi.runtime import Runtime
from support import start_server, write_config

#: no output, only time: stopped by gitops.render_timeout
BURN = "ok\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
#: the issue's template: prints 10^11 bytes
FLOOD = "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}\n"
#: one string far larger than gitops.render_memory
HOG = "{{ 'x' * 400000000 }}\n"
#: the same, as Go templates (.tmpl): 10^10 loops of nothing, 10^11 bytes, and a template calling itself,
#: each level holding 4 MiB of copies of a 512 KiB string (one value is at most 1 MiB; the levels add up)
BURN_GO = "ok\n{{ range 100000 }}{{ range 100000 }}{{ end }}{{ end }}\n"
FLOOD_GO = "{{ range 100000 }}{{ range 100000 }}xxxxxxxxxx{{ end }}{{ end }}\n"
HOG_GO = ('{{ define "hold" }}' + "".join(f"{{{{ $v{i} := print . {i} }}}}" for i in range(8))
          + '{{ template "hold" . }}{{ end }}\n'
          '{{ $s := "a " }}{{ range 18 }}{{ $s = print $s $s }}{{ end }}{{ template "hold" $s }}\n')


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "hosts-root"
    r.mkdir()
    return r


@pytest.fixture
async def rt(tmp_path: Path, repo: Repo) -> AsyncIterator[Runtime]:
    settings = parse_settings(
        f"database:\n  driver: sqlite3\n  source: {tmp_path}/db.sqlite\n"
        f"secrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n  timeout: 10s\n"
        "  render_timeout: 1s\n  render_memory: 256MiB\n  render_max_output: 64KiB\n",
        base_dir=tmp_path,
    )
    runtime = await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})
    yield runtime
    await runtime.close()


def commit(repo: Repo, root: Path, template: str) -> str:
    return repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/app.conf.j2": template,
                        "sync.yaml": manifest(root)}, "a template")


class LoopWatch:
    """The longest the event loop went without running a 20 ms ticker."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopWatch:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.02)
            now = loop.time()
            self.worst = max(self.worst, now - last)
            last = now


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def test_a_template_past_the_time_limit_is_stopped_while_the_loop_runs_on(rt: Runtime, repo: Repo,
                                                                                 root: Path) -> None:
    """A template that loops for hours is stopped at gitops.render_timeout and named (template, line, host)
    in the plan's and the sync's error; meanwhile the server's event loop never waits; nothing is written,
    and the next commit renders in a fresh rendering process."""
    commit(repo, root, BURN)
    async with LoopWatch() as watch:
        t0 = time.monotonic()
        with pytest.raises(TemplateError) as info:
            await rt.gitops.plan()
        took = time.monotonic() - t0
    assert "templates/app.conf.j2, line 2, host h1: rendering took longer than 1s (gitops.render_timeout)" \
        in info.value.message
    assert took < 1 + worker.GRACE, took
    assert watch.worst < 0.5, watch.worst
    with pytest.raises(TemplateError):
        await rt.gitops.sync(trigger="cli", user="t")
    items, _ = await rt.gitops.history(kind="sync")
    assert items[0]["status"] == "error" and "rendering took longer than 1s" in items[0]["reason"]
    assert files_of(root) == {}
    commit(repo, root, "fine\n")
    assert (await rt.gitops.sync(trigger="cli", user="t"))["status"] == "success"
    assert files_of(root) == {"h1/app.conf": "fine\n"}


async def test_a_template_printing_without_end_stops_at_the_output_limit(rt: Runtime, repo: Repo,
                                                                          root: Path) -> None:
    """The issue's nested loop (10^11 bytes of output) stops as soon as it passes gitops.render_max_output."""
    commit(repo, root, FLOOD)
    t0 = time.monotonic()
    with pytest.raises(TemplateError) as info:
        await rt.gitops.plan()
    assert "templates/app.conf.j2, host h1: renders more than 64 KiB (gitops.render_max_output)" \
        in info.value.message
    assert time.monotonic() - t0 < 1 + worker.GRACE


async def test_a_template_allocating_past_the_memory_limit_is_stopped(rt: Runtime, repo: Repo, root: Path) -> None:
    """A 400 MB string is refused by the rendering process's memory limit (256 MiB), named with its line;
    the server's own memory does not grow by it."""
    commit(repo, root, HOG)
    before = rss_mib(os.getpid())
    with pytest.raises(TemplateError) as info:
        await rt.gitops.plan()
    assert "templates/app.conf.j2, line 1, host h1: rendering needed more than 256 MiB of memory " \
        "(gitops.render_memory)" in info.value.message
    assert rss_mib(os.getpid()) - before < 100


async def test_go_templates_are_stopped_at_the_same_limits(rt: Runtime, repo: Repo, root: Path) -> None:
    """Go templates (.tmpl) render in the same process under the same limits: one printing without end
    stops at render_max_output (the next file is still tried), one looping at render_timeout, each named
    with its template, line and host; the server's loop never waits and nothing is written."""
    repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/flood.tmpl": FLOOD_GO, "templates/burn.tmpl": BURN_GO,
                 "sync.yaml": go_manifest(root, "flood", "burn")}, "go: flood and burn")
    expected = [
        "templates/flood.tmpl, host h1: renders more than 64 KiB (gitops.render_max_output); it was stopped at that size",
        "templates/burn.tmpl, line 2, host h1: rendering took longer than 1s (gitops.render_timeout); it was stopped there"]
    async with LoopWatch() as watch:
        t0 = time.monotonic()
        with pytest.raises(TemplateError) as info:
            await rt.gitops.plan()
        took = time.monotonic() - t0
    assert info.value.problems == expected  # type: ignore[attr-defined]
    assert took < 1 + worker.GRACE, took
    assert watch.worst < 0.5, watch.worst
    with pytest.raises(TemplateError) as info:
        await rt.gitops.sync(trigger="cli", user="t")
    assert info.value.problems == expected  # type: ignore[attr-defined]
    items, _ = await rt.gitops.history(kind="sync")
    assert items[0]["status"] == "error" and all(p in items[0]["reason"] for p in expected)
    assert files_of(root) == {}


async def test_a_go_template_allocating_past_the_memory_limit_is_stopped(tmp_path: Path, repo: Repo, root: Path) -> None:
    """No one value of a Go template may pass 1 MiB, but a template calling itself holds more at each level:
    the rendering process's memory limit stops it, named with the template, line and host."""
    settings = parse_settings(
        f"database:\n  driver: sqlite3\n  source: {tmp_path}/db.sqlite\n"
        f"secrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n  render_timeout: 30s\n  render_memory: 256MiB\n",
        base_dir=tmp_path)
    runtime = await Runtime.open(settings, kind="cli", connectors={"ssh": LocalConnector()})
    try:
        repo.commit({"hosts/web.yaml": hosts_yaml(["h1"]), "templates/hog.tmpl": HOG_GO,
                     "sync.yaml": go_manifest(root, "hog")}, "go: hog")
        before = rss_mib(os.getpid())
        with pytest.raises(TemplateError) as info:
            await runtime.gitops.plan()
        assert info.value.problems == [  # type: ignore[attr-defined]
            "templates/hog.tmpl, line 1, host h1: rendering needed more than 256 MiB of memory (gitops.render_memory); "
            "it was stopped there"]
        assert rss_mib(os.getpid()) - before < 100
    finally:
        await runtime.close()


def go_manifest(root: Path, *names: str) -> str:
    return "files:\n" + "".join(f"  - template: {n}.tmpl\n    path: '{root}/{{{{ .host.name }}}}/{n}.conf'\n"
                                 "    target: {group: web}\n" for n in names)


async def test_plans_of_one_commit_share_one_render(rt: Runtime, repo: Repo, root: Path) -> None:
    """Many plans of the same commit at once (a viewer clicking "plan" again and again) render it once:
    together they take one render_timeout, not one each."""
    commit(repo, root, BURN)
    await rt.gitops.worker.call(len, "warm", timeout=30)
    t0 = time.monotonic()
    results = await asyncio.gather(*(rt.gitops.plan() for _ in range(4)), return_exceptions=True)
    took = time.monotonic() - t0
    assert all(isinstance(r, TemplateError) and "longer than 1s" in r.message for r in results), results
    assert took < 3.0, took


async def test_a_rendering_process_that_does_not_answer_is_killed(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that stops answering (here: stopped by a signal it cannot catch) is killed by the parent's
    own clock, the call says so, and the next call gets a new child."""
    monkeypatch.setattr(worker, "GRACE", 0.5)
    w = rt.gitops.worker
    assert await w.call(len, "abc", timeout=30) == 3
    pid = w.pid
    assert pid is not None
    t0 = time.monotonic()
    with pytest.raises(worker.WorkerStopped, match="did not stop; the rendering process was killed"):
        await w.call(os.kill, pid, signal.SIGSTOP, timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert await w.call(len, "abcd", timeout=30) == 4 and w.pid != pid


async def test_the_rendering_process_gets_no_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master key's environment variable (or any other the server has) is not the rendering process's:
    it keeps only what Python needs to start."""
    monkeypatch.setenv("SMALLYI_MASTER_KEY", "c2VjcmV0")
    w = worker.Worker(memory=256 * 1024 * 1024)
    try:
        assert await w.call(os.getenv, "SMALLYI_MASTER_KEY", timeout=30) is None
        assert await w.call(os.getenv, "PATH", timeout=30) == os.environ["PATH"]
    finally:
        await w.close()


def _probe(url: str, token: str, pid: int, done: threading.Event) -> dict[str, Any]:
    """Until ``done``: /healthz and an authenticated API call, each timed, and the server's memory."""
    seen: dict[str, Any] = {"slowest": 0.0, "answers": 0, "rss": 0.0, "failures": []}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as c:
        while not done.is_set():
            for path in ("/healthz", "/api/v1/gitops/status"):
                t0 = time.monotonic()
                try:
                    ok = c.get(path).status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    seen["failures"].append(f"{path}: {exc!r}")
                seen["slowest"] = max(seen["slowest"], time.monotonic() - t0)
                seen["answers"] += ok
            seen["rss"] = max(seen["rss"], rss_mib(pid))
            time.sleep(0.1)
    return seen


@pytest.mark.slow
def test_the_server_answers_while_a_hostile_commit_renders(tmp_path: Path, repo: Repo, root: Path) -> None:
    """A real server, a commit with the issue's printing loop and an endless loop: while a viewer's plan and
    then a webhook's sync render it, /healthz and the API answer within a second and the server stays
    small; both end with each limit named (template, host)."""
    config = write_config(tmp_path, extra=(
        f"secrets:\n  key_file: {tmp_path}/master.key\n"
        f"gitops:\n  repo: {repo.bare}\n  branch: main\n  webhook_secret: {SECRET}\n  poll_interval: 0s\n"
        "  drift_interval: 0s\n  render_timeout: 4s\n"))
    sha = repo.commit({
        "hosts/web.yaml": hosts_yaml(["h1"]), "templates/flood.j2": FLOOD, "templates/burn.j2": BURN,
        "sync.yaml": manifest(root).replace("app.conf.j2", "flood.j2") + manifest(root).replace(
            "files:\n", "").replace("app.conf.j2", "burn.j2").replace("/app.conf", "/burn.conf"),
    }, "hostile")
    server = start_server(config)
    try:
        token = server.login()
        expected = ["templates/flood.j2, host h1: renders more than 4 MiB (gitops.render_max_output)",
                    "templates/burn.j2, line 2, host h1: rendering took longer than 4s (gitops.render_timeout)"]

        def watched(action: Any) -> tuple[Any, dict[str, Any]]:
            done = threading.Event()
            out: dict[str, Any] = {}
            probe = threading.Thread(target=lambda: out.update(_probe(server.url, token, server.proc.pid, done)))
            probe.start()
            try:
                return action(), out
            finally:
                done.set()
                probe.join()

        with server.client(token) as c:
            plan, seen = watched(lambda: c.post("/api/v1/gitops/plan", json={}, timeout=60))
        assert plan.status_code == 422, plan.text
        assert all(e in plan.json()["error"]["message"] for e in expected), plan.text
        assert seen["answers"] >= 10 and not seen["failures"] and seen["slowest"] < 1.0, seen
        assert seen["rss"] < 400, seen

        body = push_body(sha)
        hook = httpx.post(f"{server.url}/api/v1/gitops/webhook", content=body, headers={
            "X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign_github(SECRET, body)})
        assert hook.status_code == 202, hook.text

        def until_done() -> dict[str, Any]:
            with server.client(token) as c:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    record: dict[str, Any] = c.get(f"/api/v1/gitops/syncs/{hook.json()['sync']}").json()
                    if record["status"] not in ("queued", "running"):
                        return record
                    time.sleep(0.2)
            raise AssertionError("the webhook's sync did not end")

        record, seen = watched(until_done)
        assert record["status"] == "error" and all(e in record["reason"] for e in expected), record
        assert seen["answers"] >= 10 and not seen["failures"] and seen["slowest"] < 1.0, seen
        assert seen["rss"] < 400, seen
        assert files_of(root) == {}
    finally:
        server.stop()
