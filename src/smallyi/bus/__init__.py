"""Event bus: one small publish/subscribe interface (``base.Bus``) with two implementations, in-process
(``memory``, the default) and Redis Streams (``redis``, for several processes); ``factory`` picks one from
the config.

Imports: ``config`` and ``errors`` only (and redis-py, in ``redis`` alone, loaded only when configured).
"""
