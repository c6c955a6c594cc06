"""GitOps rendering from data files (tests/cases/gitops/<case>/repo → expect.yaml), and the sandbox."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from smallyi.errors import InputError, TemplateError
from smallyi.gitops.bounds import RenderLimits, RenderTimeout
from smallyi.gitops.render import Desired, render_commit
from smallyi.gitops.snapshot import Commit, Snapshot, wanted

CASES = Path(__file__).resolve().parents[1] / "cases" / "gitops"
SHA = ("c0ffee" * 7)[:40]


def snapshot(repo: Path) -> Snapshot:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    return Snapshot(Commit(SHA, "Ann", "ann@example.com", "2026-11-27T00:00:00+00:00", "msg", "main"),
                    {k: v for k, v in files.items() if wanted(k)})


def render_case(name: str, limits: RenderLimits = RenderLimits()) -> Desired:
    return render_commit(snapshot(CASES / name / "repo"), limits=limits)


@contextlib.contextmanager
def alarm(seconds: float | None) -> Iterator[None]:
    """The rendering process's timer (gitops.worker), here: RenderTimeout after ``seconds``."""
    if seconds is None:
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise RenderTimeout(seconds)

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "expect.yaml").exists()))
def test_case(case: str) -> None:
    """Each case renders exactly the expected files, or fails naming every expected problem (``error``: each
    in the message; ``problems``: exactly these), under its ``limits`` and ``alarm`` if it has them."""
    expect = yaml.safe_load((CASES / case / "expect.yaml").read_text())
    limits = RenderLimits(**expect.get("limits", {}))
    if "error" in expect or "problems" in expect:
        with pytest.raises(InputError) as info, alarm(expect.get("alarm")):
            render_case(case, limits)
        for needle in expect.get("error", []):
            assert needle in info.value.message, f"{needle!r} not in:\n{info.value.message}"
        if "problems" in expect:
            assert getattr(info.value, "problems", None) == expect["problems"]
        return
    desired = render_case(case, limits)
    got = {f"{r.host.name} {r.path}": r.content.decode() for r in desired.files}
    assert got == expect["files"]
    modes = {r.path: r.entry.mode for r in desired.files}
    for path, mode in (expect.get("modes") or {}).items():
        assert oct(modes[path] or 0) == mode


def test_entry_fields_carried() -> None:
    """Owner, mode, check and reload of an entry travel with each rendered file."""
    desired = render_case("basic")
    app = next(r for r in desired.files if r.path == "/etc/app/web-01.conf")
    assert (app.entry.owner, app.entry.mode, app.entry.check, app.entry.reload) == (
        "root:root", 0o640, 'app --check "$SMALLYI_PATH"', "systemctl reload app")


def test_template_error_is_a_template_error_listing_every_host() -> None:
    """An undefined variable is a TemplateError (not an empty string), one problem per host."""
    with pytest.raises(TemplateError) as info:
        render_case("undefined")
    assert len(info.value.problems) == 2
    assert all("line 3" in p for p in info.value.problems)


def test_repo_inventory_is_parsed_with_vars() -> None:
    """hosts/*.yaml becomes hosts (file group first) with group and host variables merged in order."""
    desired = render_case("basic")
    hosts = {h.name: h for h in desired.inventory.hosts}
    assert hosts["web-01"].groups == ("web", "eu")
    assert hosts["web-02"].port == 2200 and hosts["web-02"].user == "deploy"
    assert desired.inventory.variables(hosts["web-01"])["workers"] == 4   # eu's overrides web's
    assert desired.inventory.variables(hosts["web-02"])["workers"] == 8   # the host's own wins


ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format(1) }}",
    "{{ host.__class__.__base__ }}",
    "{{ vars.update({'workers': 0}) }}",
    "{{ upstreams.append('evil') }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% import '/etc/hostname' as h %}",
    "{{ config }}",
    "{{ request }}",
    "{% for i in range(1000000) %}{% endfor %}",
]


@pytest.mark.parametrize("attempt", ESCAPES)
def test_template_cannot_escape_the_sandbox(attempt: str) -> None:
    """Templates reach no Python internals, no server file, no mutation of shared variables."""
    snap = snapshot(CASES / "basic" / "repo")
    files = dict(snap.files)
    files["templates/app.conf.j2"] = f"ok\n{attempt}\n".encode()
    with pytest.raises(TemplateError) as info:
        render_commit(Snapshot(snap.commit, files))
    assert "templates/app.conf.j2, line 2" in info.value.message
    assert "root:" not in info.value.message  # nothing of /etc/passwd leaks into the message


def test_quote_filter_quotes_for_the_shell() -> None:
    """The ``quote`` filter makes any value one shell word."""
    snap = snapshot(CASES / "basic" / "repo")
    files = dict(snap.files)
    files["hosts/web.yaml"] = files["hosts/web.yaml"].replace(b"one.example", b"\"x'; rm -rf / #\"")
    files["templates/app.conf.j2"] = b"run {{ server_name | quote }}\n"
    desired = render_commit(Snapshot(snap.commit, files))
    out = next(r for r in desired.files if r.host.name == "web-01" and r.path.startswith("/etc/app"))
    assert out.content == b"run 'x'\"'\"'; rm -rf / #'\n"


def test_missing_manifest_is_named() -> None:
    """A repository without sync.yaml says so."""
    snap = snapshot(CASES / "basic" / "repo")
    files = {k: v for k, v in snap.files.items() if k != "sync.yaml"}
    with pytest.raises(InputError, match="no sync.yaml"):
        render_commit(Snapshot(snap.commit, files))


def test_non_utf8_template_is_named() -> None:
    """A template that is not UTF-8 is refused with its path and commit."""
    snap = snapshot(CASES / "basic" / "repo")
    files = dict(snap.files)
    files["templates/app.conf.j2"] = b"\xff\xfe bad"
    with pytest.raises(InputError, match=r"templates/app.conf.j2 \(commit c0ffeec0ff\) is not UTF-8"):
        render_commit(Snapshot(snap.commit, files))


def with_template(text: str) -> Snapshot:
    """The basic case's commit with templates/app.conf.j2 replaced."""
    snap = snapshot(CASES / "basic" / "repo")
    return Snapshot(snap.commit, {**snap.files, "templates/app.conf.j2": text.encode()})


def test_output_is_bounded_while_it_is_written() -> None:
    """A template that prints without end stops at gitops.render_max_output as it writes: the memory it
    used stays near the limit instead of holding the whole text first."""
    import tracemalloc

    forever = "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}\n"
    snap = with_template(forever)
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError) as info:
            render_commit(snap, limits=RenderLimits(output=64 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "templates/app.conf.j2, host web-01: renders more than 64 KiB (gitops.render_max_output)" \
        in info.value.message
    assert peak < 4 * 1024 * 1024, peak


def test_exactly_the_limit_renders() -> None:
    """A file of exactly gitops.render_max_output bytes (multi-byte characters counted as bytes) renders."""
    snap = with_template("{% for i in range(512) %}é{% endfor %}")
    desired = render_commit(snap, limits=RenderLimits(output=1024))
    assert {len(r.content) for r in desired.files if r.path.startswith("/etc/app/")} == {1024}
    with pytest.raises(TemplateError, match="renders more than 1023 bytes"):
        render_commit(snap, limits=RenderLimits(output=1023))


def test_a_stop_names_the_template_line_and_host_it_happened_at() -> None:
    """A limit that stops the render mid-template (the rendering process's timer raises it) is one problem
    naming the template, the line and the host, and ends the render: no later file is tried."""
    import signal

    burn = "ok\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n"
    snap = with_template(burn)

    def stop(signum: int, frame: object) -> None:
        raise RenderTimeout(0.2)

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(TemplateError) as info:
            render_commit(snap)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert info.value.problems == [
        "templates/app.conf.j2, line 2, host web-01: rendering took longer than 0.2s (gitops.render_timeout); "
        "it was stopped there"]


def with_go_template(text: str, *, path: str | None = None) -> Snapshot:
    """The go_basic case's commit with templates/app.conf.tmpl (and its sync.yaml path) replaced."""
    snap = snapshot(CASES / "go_basic" / "repo")
    files = {**snap.files, "templates/app.conf.tmpl": text.encode()}
    if path is not None:
        files["sync.yaml"] = files["sync.yaml"].replace(b"/etc/app/{{ .host.name }}.conf", path.encode())
    return Snapshot(snap.commit, files)


GO_ESCAPES = [
    "{{ .__class__ }}",
    "{{ .host.__class__.__base__ }}",
    "{{ .vars.__init__.__globals__ }}",
    "{{ (index .upstreams 0).__class__ }}",
    "{{ .vars.update }}",
    "{{ call .vars.update }}",
    '{{ printf "%s" .commit.__dict__ }}',
    '{{ template "/etc/passwd" . }}',
    '{{ template "../../../../etc/passwd" . }}',
    '{{ template "../sync.yaml" . }}',
    '{{ env "HOME" }}',
    '{{ readFile "/etc/passwd" }}',
    '{{ exec "id" }}',
]


@pytest.mark.parametrize("attempt", GO_ESCAPES)
def test_go_template_reaches_only_the_data(attempt: str) -> None:
    """A .tmpl reads map keys and calls the engine's pure functions and the repository's .tmpl files:
    no Python attribute, no server file, no environment, no command."""
    with pytest.raises(TemplateError) as info:
        render_commit(with_go_template(f"ok\n{attempt}\n"))
    assert "templates/app.conf.tmpl, line 2" in info.value.message
    assert "root:" not in info.value.message and "<" not in info.value.message  # no file, no Python repr


def test_go_template_output_is_bounded_while_it_is_written() -> None:
    """A Go template printing 10^11 bytes stops at gitops.render_max_output as it writes, holding little
    more than the limit; its range over 100000 builds no list."""
    import tracemalloc

    snap = with_go_template("{{ range 100000 }}{{ range 100000 }}xxxxxxxxxx{{ end }}{{ end }}\n")
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError) as info:
            render_commit(snap, limits=RenderLimits(output=64 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "templates/app.conf.tmpl, host web-01: renders more than 64 KiB (gitops.render_max_output)" \
        in info.value.message
    assert peak < 4 * 1024 * 1024, peak


def test_go_template_of_exactly_the_limit_renders() -> None:
    """A Go template's file of exactly gitops.render_max_output bytes renders; one byte less refuses it."""
    snap = with_go_template("{{ range 512 }}é{{ end }}")
    desired = render_commit(snap, limits=RenderLimits(output=1024))
    assert {len(r.content) for r in desired.files if r.path.startswith("/etc/app/")} == {1024}
    with pytest.raises(TemplateError, match="renders more than 1023 bytes"):
        render_commit(snap, limits=RenderLimits(output=1023))


def test_a_go_entrys_path_is_go() -> None:
    """The path of a .tmpl entry is a Go template: a Jinja2 path is named with the Go way to write it, and a
    missing key in it names the entry's line and the host."""
    with pytest.raises(TemplateError) as info:
        render_commit(with_go_template("x\n", path="/etc/app/{{ host.name }}.conf"))
    assert "sync.yaml line 2 (path): syntax error: 'host' is not a function; to print a variable write " \
        "{{ .host.name }}" in info.value.message
    with pytest.raises(TemplateError) as info:
        render_commit(with_go_template("x\n", path="/etc/app/{{ .nope }}.conf"))
    assert info.value.problems == [f"sync.yaml line 2 (path), host {h}: no value for .nope: the data has no key "
                                   "'nope'" for h in ("web-01", "web-02")]


def test_jinja_cannot_include_a_go_template() -> None:
    """A .j2 including a .tmpl is told that it is a Go template, not read as Jinja2 (which would fail on '.')."""
    snap = snapshot(CASES / "go_basic" / "repo")
    files = {**snap.files, "templates/motd.j2": b'{% include "head.tmpl" %}\n',
             "sync.yaml": snap.files["sync.yaml"] + b"  - template: motd.j2\n    path: /etc/motd\n"
                                                  b"    target: {group: web}\n"}
    with pytest.raises(TemplateError) as info:
        render_commit(Snapshot(snap.commit, files))
    assert "templates/motd.j2, line 1, host web-01: includes 'head.tmpl', a Go template (.tmpl): a Jinja2 " \
        "template includes only Jinja2 ones (name them .j2)" in info.value.message


REFUSED = """\
group: web
hosts:
  - name: web-01
    address: 10.0.0.1
    ssh: {private_key_secret: edge-deploy, host_key_policy: accept-new}
  - name: web-02
    address: 10.0.0.2
    ssh: {private_key_secret: prod-root, host_key_policy: "off"}
"""


def test_the_servers_settings_decide_what_a_repository_may_set() -> None:
    """Secrets listed in gitops.ssh_key_secrets and the config's own host-key policy (or a stricter one)
    are the repository's to give; another secret or a weaker policy is still refused."""
    from smallyi.gitops.inventory import RepoTrust, parse

    trust = RepoTrust(host_key_policy="accept-new", key_secrets=frozenset({"edge-deploy"}))
    with pytest.raises(InputError) as info:
        parse({"hosts/web.yaml": REFUSED}, trust)
    assert info.value.message.count("web-02") == 2 and "web-01" not in info.value.message
    inv = parse({"hosts/web.yaml": REFUSED.split("  - name: web-02")[0]}, trust)
    assert inv.hosts[0].ssh.to_dict() == {"private_key_secret": "edge-deploy", "host_key_policy": "accept-new"}
    with pytest.raises(InputError, match="'accept-new' is weaker than the server's ssh.host_key_policy"):
        parse({"hosts/web.yaml": REFUSED.split("  - name: web-02")[0]},
              RepoTrust(key_secrets=frozenset({"edge-deploy"})))


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops-repo"


def test_the_example_repository_renders_in_the_originals_syntax() -> None:
    """examples/gitops-repo (the original's layout: hosts/, templates/nginx.conf.tmpl with
    {{ .worker_processes }}) renders every file, a host's own variables over its group's."""
    desired = render_commit(snapshot(EXAMPLE))
    files = {f"{r.host.name} {r.path.removeprefix('/tmp/small-yi-demo/')}": r.content.decode() for r in desired.files}
    assert sorted(files) == ["db-01 db-01/etc/motd", "db-01 db-01/etc/postgresql/postgresql.conf",
                             "web-01 web-01/etc/motd", "web-01 web-01/etc/nginx/nginx.conf",
                             "web-02 web-02/etc/motd", "web-02 web-02/etc/nginx/nginx.conf"]
    assert files["web-02 web-02/etc/nginx/nginx.conf"].startswith(
        "# Managed by small-yi from commit c0ffeec0ff (Ann): edit it in Git, not here.\n"
        "worker_processes 4;\n\nevents {\n")
    assert "        server 127.0.0.1:9001;\n        server 127.0.0.1:9002;\n    }\n" \
        in files["web-02 web-02/etc/nginx/nginx.conf"]
    assert "worker_processes 2;\n" in files["web-01 web-01/etc/nginx/nginx.conf"]
    assert "server_name web-01.demo.internal;" in files["web-01 web-01/etc/nginx/nginx.conf"]
    assert files["db-01 db-01/etc/postgresql/postgresql.conf"].endswith(
        "listen_addresses = '127.0.1.3'\nmax_connections = 200\nshared_buffers = 256MB\n")
    assert files["web-01 web-01/etc/motd"] == "web-01 (web, demo) — questions to ops@example.com\nenv=demo\ntier=front\n"
