"""The console's own server-side records: per-user preferences, web-terminal sessions and their
recordings, and the dashboard's overview of the archive.

Imports: ``execution`` (the PTY connector, the recorder), ``inventory``, ``storage``, ``config``, ``errors``.
"""
