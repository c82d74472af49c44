"""The inventory: which version of each service Interlock last put in each environment."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from interlock.domain.records import InventoryEntry
from interlock.storage.base import Prepared, QueryBase
from interlock.storage.schema import inventory

_ENTRY = select(inventory).where(
    inventory.c.service == bindparam("service"),
    inventory.c.environment == bindparam("environment"),
)
_COLUMNS = [c.name for c in inventory.c]


def _upsert(insert: type[sqlite.Insert] | type[postgresql.Insert]) -> Prepared:
    """One row per (service, environment): inserted, or its other columns replaced."""
    statement = insert(inventory).values(
        {c.name: bindparam(c.name, type_=c.type) for c in inventory.c}
    )
    return Prepared(
        statement.on_conflict_do_update(
            index_elements=[inventory.c.service, inventory.c.environment],
            set_={c.name: statement.excluded[c.name] for c in inventory.c if not c.primary_key},
        )
    )


# Every service deployed runs these once (see base.Prepared): its entry before, and the new one.
_ENTRY_RUN = Prepared(_ENTRY)
_UPSERT_RUN = {"sqlite": _upsert(sqlite.Insert), "postgresql": _upsert(postgresql.Insert)}


class InventoryQueries(QueryBase):
    def set_inventory(self, entry: InventoryEntry) -> InventoryEntry | None:
        """Record what now runs; return what ran there before (``None`` if nothing).

        Two statements: the entry before (the audit event says what was replaced)
        and one upsert, where a delete and an insert used to follow the read.
        """
        before = self.inventory_entry(entry.service, entry.environment)
        _UPSERT_RUN[self.dialect].run(self.conn, entry.__dict__)
        return before

    def inventory_entry(self, service: str, environment: str) -> InventoryEntry | None:
        row = _ENTRY_RUN.run(self.conn, {"service": service, "environment": environment}).first()
        return InventoryEntry(**row) if row else None

    def all_inventory(self) -> list[InventoryEntry]:
        rows = self.conn.execute(
            select(inventory).order_by(inventory.c.service, inventory.c.environment)
        )
        return [InventoryEntry(**r._mapping) for r in rows]
