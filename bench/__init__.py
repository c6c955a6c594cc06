"""small-yi's benchmark harness: ``python -m bench`` (or ``make bench``).

It brings up its own OpenSSH fleet (``smallyi.testing.Fleet`` in a folder and on a port of its own,
never a test session's), times small-yi and its peers (raw asyncssh, parallel-ssh, pyinfra, fabric, xargs,
Ansible) on it in the same run, and writes the table into ``docs/performance.md``.

Modules: ``proc`` (timed child processes), ``fleet`` (fleet and per-N subsets), ``peers`` (the peer
tools' commands), ``smallyi`` (a small-yi workspace: config, hosts, server, token), ``scenarios`` (one
function per row group), ``report`` (the table and the page). Run on their own: ``gitops_sync`` (GitOps
against Ansible and pyinfra), ``dist_startup`` (the single-file executable against the venv).
"""
