"""Files that hold secrets are 0600 and their new folders 0700 from creation, whatever the umask."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from smallyi.storage import private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The widest umask: anything not made private on purpose comes out 0666 / 0777."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_missing_folders_are_made_0700_and_existing_ones_left(tmp_path: Path) -> None:
    """Every folder make_dir creates is 0700; one that existed keeps the mode its owner gave it."""
    tmp_path.chmod(0o755)
    private.make_dir(tmp_path / "a" / "b")
    assert (mode(tmp_path), mode(tmp_path / "a"), mode(tmp_path / "a" / "b")) == (0o755, 0o700, 0o700)


def test_a_new_file_is_0600_and_an_existing_one_is_kept(tmp_path: Path) -> None:
    """make_file creates an empty 0600 file once; a second call leaves the file and its contents alone."""
    path = tmp_path / "data" / "x.db"
    assert private.make_file(path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    path.write_bytes(b"kept")
    assert not private.make_file(path) and path.read_bytes() == b"kept"


def test_a_wider_file_is_narrowed_with_a_notice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """narrow makes a group- or world-readable file 0600 and logs it; a private or absent file is left quiet."""
    path = tmp_path / "x.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    private.narrow(path)
    private.narrow(path)
    private.narrow(tmp_path / "absent")
    assert mode(path) == 0o600
    assert [r.getMessage() for r in caplog.records] == [f"{path} was readable by other users (mode 644); made it 0600"]


def test_open_new_writes_0600_even_over_a_wider_file(tmp_path: Path) -> None:
    """A file rewritten with open_new (a config from `init --force`) is 0600 before its new contents land."""
    path = tmp_path / "config.yaml"
    path.write_text("old")
    path.chmod(0o644)
    with private.open_new(path, "w", encoding="utf-8") as fh:
        assert mode(path) == 0o600
        fh.write("new")
    assert path.read_text() == "new" and mode(path) == 0o600
