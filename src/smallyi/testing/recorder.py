"""An ``emit`` for the engine that keeps every event and checks the per-host contract as they come."""

from __future__ import annotations

from collections import defaultdict

from smallyi.execution.events import Event, HostDone, HostOutput, HostStarted
from smallyi.inventory.hosts import HostSpec


class Recorder:
    """An ``emit`` that keeps every event and checks the per-host order as they come."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.started: dict[str, HostStarted] = {}
        self.done: dict[str, HostDone] = {}
        self.output: dict[str, list[HostOutput]] = defaultdict(list)
        self.problems: list[str] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        host = event.host
        if isinstance(event, HostStarted):
            if host in self.started:
                self.problems.append(f"{host}: second HostStarted")
            self.started[host] = event
        elif isinstance(event, HostDone):
            if host not in self.started:
                self.problems.append(f"{host}: HostDone before HostStarted")
            if host in self.done:
                self.problems.append(f"{host}: second HostDone")
            self.done[host] = event
        else:
            if host not in self.started or host in self.done:
                self.problems.append(f"{host}: output outside HostStarted..HostDone")
            self.output[host].append(event)

    def lines(self, host: str, stream: str = "stdout") -> list[str]:
        return [e.text for e in self.output.get(host, []) if e.stream == stream]

    def status(self, host: str) -> str:
        return str(self.done[host].status)

    def check(self, hosts: list[HostSpec] | list[str]) -> None:
        """Assert the contract: each host exactly one HostStarted and one HostDone, output between."""
        names = [h if isinstance(h, str) else h.name for h in hosts]
        missing = [n for n in names if n not in self.done]
        assert not self.problems, self.problems
        assert not missing, f"no HostDone for {missing}"
