"""bcrypt password hashes, compatible with the original's ``$2a$12$`` and with Go, htpasswd and PHP.

bcrypt only reads the first 72 bytes of a password; other tools silently truncate, so verification
does the same for compatibility, while ``hash_password`` refuses longer passwords outright.

A check costs a quarter of a second of CPU at cost 12, on purpose: the server runs it in a worker thread
(bcrypt releases the GIL), a few at a time and at a lower priority, with a bounded queue
(:class:`PasswordChecker`), so a flood of logins slows only other logins, not the rest of the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from smallyi.errors import InputError, Throttled

COST = 12
MAX_BYTES = 72
_PREFIXES = (b"$2a$", b"$2b$", b"$2y$", b"$2x$")


def hash_password(password: str, *, cost: int = COST) -> str:
    """A new bcrypt hash (``$2b$``) of ``password``."""
    raw = password.encode()
    if not raw:
        raise InputError("the password is empty", field="password")
    if len(raw) > MAX_BYTES:
        raise InputError(
            f"the password is {len(raw)} bytes; bcrypt uses at most {MAX_BYTES}, choose a shorter one",
            field="password",
        )
    return bcrypt.hashpw(raw, bcrypt.gensalt(cost)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    """True if ``password`` matches; False for a wrong password or a malformed hash (never raises)."""
    h = password_hash.encode()
    if not h.startswith(_PREFIXES):
        return False
    try:
        return bcrypt.checkpw(password.encode()[:MAX_BYTES], h)
    except ValueError:
        return False


# a hash of a random password, checked against when the user does not exist, so that timing does not
# tell which usernames exist
DUMMY_HASH = "$2b$12$C6UzMDM.H6dfI/f/IKxGhuJpL8FVQ5S2oPz6m6TV0xWkRmnYLAyNy"


class PasswordChecker:
    """``verify_password`` off the event loop: at most ``concurrency`` checks run at once, in threads of their
    own at a lower CPU priority (on Linux), so that the event loop wins the CPU when both want it; at most
    ``queue`` more wait, and a login past that is refused at once (Throttled), not queued without end."""

    def __init__(self, *, concurrency: int | None = None, queue: int = 64) -> None:
        self.concurrency = concurrency or max(1, (os.cpu_count() or 2) // 2)
        self.queue = queue
        self._pool: ThreadPoolExecutor | None = None
        self._inflight = 0

    async def verify(self, password: str, password_hash: str) -> bool:
        if self._inflight >= self.concurrency + self.queue:
            raise Throttled("the server is checking too many logins at once; try again in a second", retry_after=1.0)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="bcrypt", initializer=_lower_priority)
        self._inflight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password,
                                                                    password_hash)
        finally:
            self._inflight -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _lower_priority() -> None:
    """Nice this thread (Linux nices threads one by one); elsewhere the check runs at normal priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
