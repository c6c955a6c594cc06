"""What a sync would change: diffs, the quoting of check commands, file paths, owners and modes."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from smallyi.errors import InputError
from smallyi.execution.files import check_mode, check_path, parse_owner
from smallyi.gitops.changes import MAX_DIFF, unified
from smallyi.gitops.distribute import command_for
from smallyi.gitops.store import host_status


def test_unified_diff_of_a_change() -> None:
    """A changed line shows as -old/+new with a/ and b/ paths."""
    d = unified(b"a\nb\n", b"a\nc\n", "/etc/x")
    assert "--- a/etc/x" in d and "+++ b/etc/x" in d and "-b\n" in d and "+c\n" in d


def test_new_file_diff_is_from_dev_null() -> None:
    """A file that does not exist yet is diffed from /dev/null."""
    assert unified(None, b"x\n", "/etc/x").startswith("--- /dev/null\n+++ b/etc/x")


def test_equal_content_has_no_diff() -> None:
    """Same bytes, no diff."""
    assert unified(b"same", b"same", "/x") == ""


def test_binary_and_huge_diffs_are_bounded() -> None:
    """Binary content is named, not dumped; long diffs are cut at MAX_DIFF."""
    assert unified(b"\0\1", b"\0\2", "/bin/x") == "Binary file /bin/x differs\n"
    big = unified(None, b"".join(b"line %d\n" % i for i in range(50_000)), "/x")
    assert len(big) < MAX_DIFF + 200 and big.endswith("KiB\n")


def test_missing_final_newline_is_marked() -> None:
    """A last line without a newline is marked as diff does."""
    assert "\\ No newline at end of file" in unified(b"a\n", b"a\nb", "/x")


@pytest.mark.parametrize("path", ["/etc/a b", "/tmp/$(touch pwned)", "/tmp/x'; rm -rf /; '", "/tmp/`id`"])
def test_check_command_gets_the_path_quoted(path: str) -> None:
    """SMALLYI_PATH holds the path verbatim, whatever shell syntax it contains."""
    out = subprocess.run(["/bin/sh", "-c", command_for(path, 'printf %s "$SMALLYI_PATH"')],
                         capture_output=True, text=True, check=True)
    assert out.stdout == path
    assert command_for(path, "true").startswith(f"SMALLYI_PATH={shlex.quote(path)}; ")


@pytest.mark.parametrize("path, ok", [
    ("/etc/nginx/nginx.conf", True), ("etc/x", False), ("/etc/../x", False), ("/etc//x", False),
    ("/etc/x/", False), ("/etc/\nx", False), ("/etc/./x", False),
])
def test_paths_must_be_absolute_and_normal(path: str, ok: bool) -> None:
    """Target paths are absolute, normalised, one line."""
    if ok:
        assert check_path(path) == path
    else:
        with pytest.raises(InputError):
            check_path(path)


def test_owner_and_mode_parsing() -> None:
    """Owners are USER[:GROUP] (names or ids, never an option); modes are 0..7777 octal."""
    assert parse_owner("www-data:adm") == ("www-data", "adm")
    assert parse_owner("0:0") == ("0", "0")
    for bad in ("-rf", "a b", "x:", "root;id"):
        with pytest.raises(InputError):
            parse_owner(bad)
    assert check_mode(0o644) == 0o644
    with pytest.raises(InputError):
        check_mode(0o17777)


def test_host_status_most_telling_first() -> None:
    """A host's result is failed > restored > changed > unchanged over its files."""
    assert host_status(["unchanged", "changed"]) == "changed"
    assert host_status(["changed", "restored"]) == "restored"
    assert host_status(["restored", "failed", "unchanged"]) == "failed"
    assert host_status([]) == "unchanged"
