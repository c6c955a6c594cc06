"""Failed-login throttling, pure and in memory: sliding windows per (username, client address) and per
client address alone.

The per-user window stops guessing one account's password; the per-address window stops one address from
trying many names (each unknown name would otherwise start a fresh window, and cost a bcrypt check).
IPv6 clients are counted by their /64, since one host commonly holds a whole /64.
"""

from __future__ import annotations

import ipaddress
import time
from collections import deque
from collections.abc import Callable, Hashable


def address_key(client: str) -> str:
    """The unit an address is throttled by: an IPv4 address itself, an IPv6 address's /64, else the text."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Windows:
    """Timestamps of recent failures per key; at most ``max_keys`` keys, the oldest forgotten first."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float], max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._fails: dict[Hashable, deque[float]] = {}
        self._noted: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._fails)

    def retry_after(self, key: Hashable) -> float:
        q = self._recent(key)
        if q is None or len(q) < self.limit:
            return 0.0
        return max(0.0, q[0] + self.window - self._clock())

    def add(self, key: Hashable) -> None:
        q = self._recent(key)
        if q is None:
            if len(self._fails) >= self._max_keys:
                self.clear(next(iter(self._fails)))
            q = self._fails[key] = deque(maxlen=self.limit)
        q.append(self._clock())

    def resize(self, limit: int, window: float) -> None:
        """New limits; the failures counted so far still count (as many of them as the new limit keeps)."""
        self.limit, self.window = limit, window
        for key, q in self._fails.items():
            self._fails[key] = deque(q, maxlen=limit)

    def first_refusal(self, key: Hashable) -> bool:
        """True the first time a refusal of ``key`` is reported since it was last allowed."""
        if key in self._noted or key not in self._fails:
            return False
        self._noted.add(key)
        return True

    def clear(self, key: Hashable) -> None:
        self._fails.pop(key, None)
        self._noted.discard(key)

    def _recent(self, key: Hashable) -> deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        cutoff = self._clock() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            self.clear(key)
            return None
        return q


class LoginThrottle:
    """Allows ``max_failures`` failed logins per (user, client) and ``max_address_failures`` per client
    within ``window`` seconds, then refuses.

    A success clears its (user, client) count only: an address's count runs out with the window, so a
    valid account cannot be used to reset it between guesses.
    """

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        max_address_failures: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._fails = _Windows(max_failures, window, clock, max_keys)
        self._addresses = _Windows(max_address_failures or 2**31, window, clock, max_keys)

    def reconfigure(self, *, max_failures: int, window: float, max_address_failures: int | None = None) -> None:
        """A reloaded config's limits, for the next login; the failures counted so far still count."""
        self.max_failures, self.window = max_failures, window
        self._fails.resize(max_failures, window)
        self._addresses.resize(max_address_failures or 2**31, window)

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until ``username`` may try again from ``client``; 0 if allowed now."""
        return self._fails.retry_after((username, client))

    def address_retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try any login again; 0 if allowed now."""
        return self._addresses.retry_after(address_key(client))

    def failed(self, username: str, client: str) -> None:
        self._fails.add((username, client))
        self._addresses.add(address_key(client))

    def succeeded(self, username: str, client: str) -> None:
        self._fails.clear((username, client))

    def first_refusal(self, username: str | None, client: str) -> bool:
        """Whether this refusal is the first since the throttle closed for ``client`` (``username`` None) or
        for ``username`` from ``client``: only that one is worth an audit record, not each of a flood."""
        if username is None:
            return self._addresses.first_refusal(address_key(client))
        return self._fails.first_refusal((username, client))
