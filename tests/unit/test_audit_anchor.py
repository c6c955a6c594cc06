"""The external anchor's file (atomic, forward only, compare-and-swap across processes) and its syslog line."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from smallyi.audit.anchor import Anchor, AnchorFile
from smallyi.audit.chain import AuditKeys
from smallyi.audit.publish import _syslog_address, line, payload
from smallyi.errors import StorageError

KEYS = AuditKeys({"k1": b"\x01" * 32}, "k1")


def anchor(seq: int) -> Anchor:
    return Anchor(seq, f"{seq:064x}", f"{seq:064d}", 1, "2026-11-27T10:00:00+00:00").signed(KEYS)


def test_the_anchor_moves_forward_only_and_round_trips(tmp_path: Path) -> None:
    """Written with mode 0600; an older anchor, or one over a file that changed meanwhile, does not replace it."""
    f = AnchorFile(tmp_path / "sub" / "audit.anchor")
    assert f.read() is None
    assert f.advance(anchor(3), over=None) == anchor(3)
    assert f.read() == anchor(3) and f.read().check(KEYS)  # type: ignore[union-attr]
    assert (f.path.stat().st_mode & 0o777) == 0o600
    assert f.advance(anchor(2), over=anchor(3)) == anchor(3)  # never back
    assert f.advance(anchor(5), over=anchor(1)) == anchor(3)  # not over a file it did not check
    assert f.advance(anchor(5), over=anchor(3)) == anchor(5)


def _push(path: str, start: int) -> None:
    f = AnchorFile(path)
    for seq in range(start, start + 200, 2):
        current = f.read()
        f.advance(anchor(seq), over=current)


def test_processes_moving_it_at_once_never_move_it_back(tmp_path: Path) -> None:
    """Two processes racing to move the anchor leave the highest id either wrote, whole."""
    path = str(tmp_path / "audit.anchor")
    ps = [multiprocessing.get_context("spawn").Process(target=_push, args=(path, s)) for s in (1, 2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
    got = AnchorFile(path).read()
    assert got is not None and got.seq >= 199 and got.check(KEYS)


def test_a_damaged_anchor_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not an anchor says so, naming it."""
    (tmp_path / "audit.anchor").write_text("{not json")
    with pytest.raises(StorageError, match="audit.anchor is not an anchor small-yi wrote"):
        AnchorFile(tmp_path / "audit.anchor").read()


def test_the_syslog_line_and_webhook_body_carry_every_field() -> None:
    """A copy sent off the machine can be checked with the audit key: every field is in it."""
    a = anchor(7)
    text = line(a, where="/srv/audit.anchor")
    assert text.startswith("audit anchor seq=7 ") and f"sig={a.sig}" in text and text.endswith("file=/srv/audit.anchor")
    assert payload(a, where="/srv/x")["anchor"] == a.to_dict()
    assert _syslog_address("/dev/log") == "/dev/log"
    assert _syslog_address("127.0.0.1:514") == ("127.0.0.1", 514)
    assert _syslog_address("[::1]:5514") == ("::1", 5514)
