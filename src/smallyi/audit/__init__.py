"""The audit trail: who did what, when, from where, with what result; append-only, hash-chained and
MAC'd under an audit key kept outside the database.

``chain`` is pure (the record's canonical form, its hash and MAC, verification); ``trail`` stores, searches,
exports and purges records; ``export`` formats them. Imports: ``policy``, ``storage``, ``config``,
``errors``. The API, the CLI, the task service and auth write records; nothing updates or deletes one
except the retention purge, which leaves an anchor so the chain still verifies, and records itself.
"""
