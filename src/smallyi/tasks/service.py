"""Task lifecycle (implementation in progress)."""

from __future__ import annotations


class TaskService:
    pass
