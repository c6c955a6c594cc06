"""small-yi: self-hosted ops automation over plain SSH.

Layers, top to bottom (enforced by import-linter): ``cli`` → ``app`` → ``api``/``web`` → ``tasks``
→ ``execution``/``auth`` → ``inventory`` → ``storage``/``bus`` → ``config`` → ``errors``/``types``/
``durations``.
"""

import warnings

__version__ = "0.1.0"

# asyncssh touches cryptography's DSA names at import; cryptography >= 47 warns on each (five lines on every
# `run` and `serve`). small-yi never offers DSA keys, so the warning says nothing to a user: silence it here,
# at the package root that every entry point imports, instead of pinning an old cryptography.
warnings.filterwarnings("ignore", message="DSA is deprecated", category=Warning)
