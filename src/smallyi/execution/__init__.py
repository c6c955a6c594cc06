"""Execution engine: run one command on many hosts, within limits, emitting events.

``engine`` plans hosts into sessions under a global cap, per-job concurrency and a connection rate;
``connectors/`` reach a host (``ssh`` pooled via asyncssh, ``local`` on the server itself, ``fake``
for tests); output becomes ``events``. The engine knows nothing of HTTP or the database.
Imports: ``inventory`` (HostSpec), ``config``, ``errors``, ``types``, ``durations``.
"""
