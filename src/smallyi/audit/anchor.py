"""The chain's external anchor: the newest record's id, hash and MAC, kept outside the database.

The MACs stop a chain from being rewritten by someone without the audit key, but not from being cut: delete
the newest records and put back a head row copied earlier (its MAC was valid then), or strip every MAC and
move ``mac_from`` past the end, and the database alone still verifies. So after each append the trail writes
the newest record's (id, hash, MAC) and ``mac_from`` to a file beside the audit key, signed with that key;
``audit verify`` then fails when the database no longer reaches that record, holds another one under its
id, or has moved the MAC boundary. The anchor only moves forward, and only over a trail that still holds
the record it last vouched for. The server can also send it to syslog or a webhook, off the machine.

``Anchor`` and its text are pure; ``AnchorFile`` is the file (atomic replace, a lock for processes that
write it at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from smallyi.errors import StorageError

if TYPE_CHECKING:
    from smallyi.audit.chain import AuditKeys


@dataclass(frozen=True, slots=True)
class Anchor:
    """What the anchor vouches for: record ``seq`` had ``hash`` and ``mac``, and ``mac_from`` was the boundary."""

    seq: int
    hash: str
    mac: str
    mac_from: int
    #: when it was written (UTC, ISO 8601)
    at: str
    #: the audit key it is signed with, and the signature
    key: str = ""
    sig: str = ""

    def text(self) -> str:
        return f"small-yi audit anchor v1\n{self.seq}\n{self.hash}\n{self.mac}\n{self.mac_from}\n{self.at}"

    def signed(self, keys: AuditKeys) -> Anchor:
        return Anchor(self.seq, self.hash, self.mac, self.mac_from, self.at, keys.current, keys.sign_text(self.text()))

    def check(self, keys: AuditKeys) -> bool | None:
        """True/False: the signature matches or not; None: its key is not among ours."""
        return keys.check_text(self.key, self.text(), self.sig)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def parse(cls, text: str, *, where: str) -> Anchor:
        try:
            d = json.loads(text)
            a = cls(int(d["seq"]), str(d["hash"]), str(d["mac"]), int(d["mac_from"]), str(d["at"]), str(d["key"]),
                    str(d["sig"]))
            datetime.fromisoformat(a.at)
        except (ValueError, KeyError, TypeError):
            raise StorageError(f"the audit anchor {where} is not an anchor small-yi wrote (not the JSON of seq, hash, "
                               "mac, mac_from, at, key, sig): it was damaged or replaced") from None
        return a


class AnchorFile:
    """The anchor file: read, and moved forward atomically (never back), safe across processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> Anchor | None:
        """The anchor, or None when there is no file yet; StorageError when it cannot be read or parsed."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"the audit anchor {self.path} cannot be read: {exc}") from None
        return Anchor.parse(text, where=str(self.path))

    def advance(self, anchor: Anchor, *, over: Anchor | None) -> Anchor | None:
        """Replace the anchor ``over`` (None: no file yet) with the newer ``anchor``: a compare-and-swap under an
        exclusive lock, so processes writing at once cannot move it back or past a check they did not make.
        Returns what the file holds afterwards (``anchor`` if it was written)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = self.read()
            if current != over or (current is not None and current.seq >= anchor.seq):
                return current
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(anchor.to_dict(), sort_keys=True) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            _sync_dir(self.path.parent)
            return anchor
        finally:
            os.close(fd)


def _sync_dir(folder: Path) -> None:
    """Make the rename durable (a crash must not bring back the older anchor)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
