"""The inventory: which version of each service Interlock last put in each environment."""

from __future__ import annotations

from sqlalchemy import delete, select

from interlock.domain.records import InventoryEntry
from interlock.storage.base import QueryBase
from interlock.storage.schema import inventory


class InventoryQueries(QueryBase):
    def set_inventory(self, entry: InventoryEntry) -> InventoryEntry | None:
        """Record what now runs; return what ran there before (``None`` if nothing)."""
        before = self.inventory_entry(entry.service, entry.environment)
        self.conn.execute(
            delete(inventory).where(
                inventory.c.service == entry.service, inventory.c.environment == entry.environment
            )
        )
        self.conn.execute(inventory.insert().values(**entry.__dict__))
        return before

    def inventory_entry(self, service: str, environment: str) -> InventoryEntry | None:
        row = self.conn.execute(
            select(inventory).where(
                inventory.c.service == service, inventory.c.environment == environment
            )
        ).first()
        return InventoryEntry(**row._mapping) if row else None

    def all_inventory(self) -> list[InventoryEntry]:
        rows = self.conn.execute(
            select(inventory).order_by(inventory.c.service, inventory.c.environment)
        )
        return [InventoryEntry(**r._mapping) for r in rows]
