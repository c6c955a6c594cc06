"""Row counts of UPDATE and DELETE statements.

``AsyncSession.execute`` is typed to return ``Result``; for an UPDATE or DELETE it is a ``CursorResult``, which
alone carries ``rowcount``. One cast here instead of a ``type: ignore`` at every caller.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result


def affected(result: Result[Any]) -> int:
    """How many rows the statement behind ``result`` changed (0 when the driver cannot tell)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)
