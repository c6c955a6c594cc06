"""GitOps rendering from data files (tests/cases/gitops/<case>/repo → expect.yaml), and the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smallyi.errors import InputError, TemplateError
from smallyi.gitops.render import Desired, render_commit
from smallyi.gitops.snapshot import Commit, Snapshot, wanted

CASES = Path(__file__).resolve().parents[1] / "cases" / "gitops"
SHA = ("c0ffee" * 7)[:40]


def snapshot(repo: Path) -> Snapshot:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    return Snapshot(Commit(SHA, "Ann", "ann@example.com", "2026-11-27T00:00:00+00:00", "msg", "main"),
                    {k: v for k, v in files.items() if wanted(k)})


def render_case(name: str) -> Desired:
    return render_commit(snapshot(CASES / name / "repo"))


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "expect.yaml").exists()))
def test_case(case: str) -> None:
    """Each case renders exactly the expected files, or fails naming every expected problem."""
    expect = yaml.safe_load((CASES / case / "expect.yaml").read_text())
    if "error" in expect:
        with pytest.raises(InputError) as info:
            render_case(case)
        for needle in expect["error"]:
            assert needle in info.value.message, f"{needle!r} not in:\n{info.value.message}"
        return
    desired = render_case(case)
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
    files["templates/app.conf.tmpl"] = f"ok\n{attempt}\n".encode()
    with pytest.raises(TemplateError) as info:
        render_commit(Snapshot(snap.commit, files))
    assert "templates/app.conf.tmpl, line 2" in info.value.message
    assert "root:" not in info.value.message  # nothing of /etc/passwd leaks into the message


def test_quote_filter_quotes_for_the_shell() -> None:
    """The ``quote`` filter makes any value one shell word."""
    snap = snapshot(CASES / "basic" / "repo")
    files = dict(snap.files)
    files["hosts/web.yaml"] = files["hosts/web.yaml"].replace(b"one.example", b"\"x'; rm -rf / #\"")
    files["templates/app.conf.tmpl"] = b"run {{ server_name | quote }}\n"
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
    files["templates/app.conf.tmpl"] = b"\xff\xfe bad"
    with pytest.raises(InputError, match=r"templates/app.conf.tmpl \(commit c0ffeec0ff\) is not UTF-8"):
        render_commit(Snapshot(snap.commit, files))
