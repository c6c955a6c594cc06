"""GitOps: configuration files kept in a Git repository, rendered per host and pushed on every commit.

A domain service at the level of ``tasks``. Pure cores (no I/O, tested with data files):
``inventory`` (hosts/*.yaml → hosts and variables), ``manifest`` (sync.yaml), ``render`` (sandboxed
Jinja2), ``changes`` (current vs rendered → per-file diffs), ``webhook`` (push events and their
signatures), ``reports`` (file and sync statuses; the shapes of records, plans and answers). Edges:
``repo`` (the git CLI, argument lists only), ``store`` (sync records and the synced state, in the
database), ``distribute`` (the engine's file transfer and commands), and ``service``, which ties them
together for the API, the CLI and the server's pollers.

May import: execution, inventory, storage, bus, config, errors, types. Never the API or the CLI.
"""
