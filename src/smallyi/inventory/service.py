"""Inventory kept in the database (implementation in progress: see the foundation issue)."""

from __future__ import annotations

from smallyi.storage.db import Database


class InventoryService:
    def __init__(self, db: Database) -> None:
        self.db = db
