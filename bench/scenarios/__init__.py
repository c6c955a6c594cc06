"""One module per family of rows: ``fanout`` (cold, warm, Ansible, N=1000, 20 ms RTT), ``live``
(WebSocket latency, output flood), ``archive`` (a million results on SQLite and PostgreSQL)."""
