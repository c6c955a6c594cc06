"""HTTP API under ``/api/v1``: one router module per domain, auth as a dependency, one error shape.

Nothing here knows SSH; everything goes through the domain services held in ``deps.AppState``.
Imports: ``tasks``, ``execution``, ``auth``, ``inventory``, ``storage``, ``bus``, ``config``, ``errors``.
"""
