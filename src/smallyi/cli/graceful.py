"""uvicorn's server, stopping in an order that lets small-yi close its runtime first."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """Holds SIGINT/SIGTERM for the caller instead of re-raising them when serving stops.

    uvicorn re-raises the signal the moment it stops serving, which killed the process before the
    runtime closed: running tasks were left to crash recovery instead of being archived and marked
    ``interrupted``. The caller raises :attr:`held` once everything is closed.
    """

    held: list[int]

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.held = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self.held = list(self._captured_signals)
                self._captured_signals.clear()
