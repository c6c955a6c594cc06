"""Test helpers shipped with small-yi, for its own tests and for anyone scripting against it.

- :class:`Fleet` (``fleet``): the real OpenSSH fleet, one sshd on this machine standing in for N hosts
  on 127.0.x.y, with keys and inventories made per start; ``python -m smallyi.testing fleet up 3``.
- :class:`HostileFleet` (``hostile``): asyncssh hosts on 127.0.0.1 that misbehave one way each.
- :class:`Recorder` (``recorder``): an engine ``emit`` that checks the per-host event contract.
"""

from smallyi.testing.fleet import Fleet, FleetError
from smallyi.testing.hostile import (
    BINARY_OUTPUT,
    LOOPBACK,
    TEST_USER,
    Behaviour,
    HostileFleet,
    HostileHost,
    _Server,
)
from smallyi.testing.recorder import Recorder

__all__ = ["BINARY_OUTPUT", "LOOPBACK", "TEST_USER", "Behaviour", "Fleet", "FleetError", "HostileFleet",
           "HostileHost", "Recorder", "_Server"]
