"""small-yi: self-hosted ops automation over plain SSH.

Layers, top to bottom (enforced by import-linter): ``cli`` → ``app`` → ``api``/``web`` → ``tasks``
→ ``execution``/``auth`` → ``inventory`` → ``storage``/``bus`` → ``config`` → ``errors``/``types``/
``durations``.
"""

__version__ = "0.1.0"
