"""Execution engine: run one command on many hosts, within limits, emitting events.

``engine`` fans a ``job`` out to workers under a global session cap, per-job concurrency and a connection
rate (``limits``); ``connectors/`` reach a host (``ssh`` over a ``pool`` of asyncssh connections,
``local`` on the server itself, ``fake`` for tests; ``pty`` and ``local_pty`` open the web terminal's
shells); ``output`` splits bytes into line ``events``; ``follow`` tails log files across hosts. See docs/engine.md. The engine knows nothing of HTTP or the
database. Imports: ``inventory`` (HostSpec), ``config``, ``errors``, ``types``; asyncssh only in
``connectors/``.
"""
