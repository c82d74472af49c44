"""Shared helpers for the query modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Row

if TYPE_CHECKING:
    from interlock.storage.db import Database


class QueryBase:
    conn: Connection
    db: Database
    dialect: str
    read_only: bool
    channels: set[str]
    _pending_audit: list[dict[str, Any]]

    def notify(self, channel: str = "work") -> None:  # pragma: no cover - defined in Tx
        raise NotImplementedError

    def for_update(self) -> bool:
        """Whether row locks are needed (PostgreSQL); SQLite has one writer at a time."""
        return self.dialect == "postgresql" and not self.read_only


def row_dict(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)
