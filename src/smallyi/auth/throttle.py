"""Failed-login throttling per (username, client address): a sliding window, pure and in memory."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    """Allows ``max_failures`` failed logins per key within ``window`` seconds, then refuses.

    Memory is bounded: at most ``max_keys`` keys are tracked; the oldest are forgotten first.
    """

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until ``username`` may try again from ``client``; 0 if allowed now."""
        q = self._recent((username, client))
        if q is None or len(q) < self.max_failures:
            return 0.0
        return max(0.0, q[0] + self.window - self._clock())

    def failed(self, username: str, client: str) -> None:
        key = (username, client)
        q = self._recent(key)
        if q is None:
            if len(self._fails) >= self._max_keys:
                self._fails.pop(next(iter(self._fails)))
            q = self._fails[key] = deque(maxlen=self.max_failures)
        q.append(self._clock())

    def succeeded(self, username: str, client: str) -> None:
        self._fails.pop((username, client), None)

    def _recent(self, key: tuple[str, str]) -> deque[float] | None:
        q = self._fails.get(key)
        if q is None:
            return None
        cutoff = self._clock() - self.window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._fails[key]
            return None
        return q
