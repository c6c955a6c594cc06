"""The web terminal: recorded login shells on hosts, and the sessions read back.

``sessions`` opens a shell for a user, records the session (a ``terminal_sessions`` row and its
recording in ``terminal_chunks``) and lists and replays them; ``recording`` (pure) writes asciicast v2;
``line_guard`` (pure) puts typed lines through the command policy, a guard against mistakes only.
The shells themselves come from ``execution/connectors/pty.py`` (SSH, beside the other asyncssh code
and sharing its keys and host-key policy) and ``local_pty.py`` (the server's own); the WebSocket and
the routes are ``api/terminal.py``.

Imports: ``execution`` (the PTY connector), ``policy``, ``inventory``, ``storage``, ``errors``.
"""
