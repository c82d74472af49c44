"""Shared helpers for the query modules."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.dml import Update

if TYPE_CHECKING:
    from interlock.storage.db import Database


@dataclass
class StaleFacts:
    """What a transaction changed that the delivery facts derive from.

    The facts are brought up to date once, just before the transaction
    commits (:meth:`~interlock.storage.delivery.DeliveryQueries.flush_delivery`):
    in the same transaction, from its final state, and with the facts lock
    held only for the last moments of the transaction.
    """

    finished: set[int] = field(default_factory=set)  # deployments that ended
    started: set[int] = field(default_factory=set)  # deployments that began (slips)
    gates: set[int] = field(default_factory=set)  # deployments with an approval decided
    incidents: list[tuple[str | None, str, datetime, int | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.finished or self.started or self.gates or self.incidents)


class QueryBase:
    conn: Connection
    db: Database
    dialect: str
    read_only: bool
    channels: set[str]
    _pending_audit: list[dict[str, Any]]
    _touched: set[int]
    changed_releases: frozenset[int]
    readied: set[int]
    stale: StaleFacts

    def notify(self, channel: str = "work") -> None:  # pragma: no cover - defined in Tx
        raise NotImplementedError

    def for_update(self) -> bool:
        """Whether row locks are needed (PostgreSQL); SQLite has one writer at a time."""
        return self.dialect == "postgresql" and not self.read_only


def row_dict(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


_updates: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Update] = {}
_updates_lock = threading.Lock()


def guarded_update(table: Table, where: Iterable[str], values: Iterable[str]) -> Update:
    """``UPDATE table SET v = :v ... WHERE w = :w_ ...``, built once per shape and reused.

    Building a statement costs SQLAlchemy far more than running a cached one,
    and these updates run for every step; the WHERE parameters are named
    ``w_<column>`` and the values ``v_<column>`` (SQLAlchemy reserves the bare names).
    """
    key = (table.name, tuple(where), tuple(sorted(values)))
    found = _updates.get(key)
    if found is None:
        statement = (
            update(table)
            .where(*[table.c[name] == bindparam(f"w_{name}") for name in key[1]])
            .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in key[2]})
        )
        with _updates_lock:
            found = _updates.setdefault(key, statement)
    return found


def update_params(values: dict[str, Any], guard: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a :func:`guarded_update` statement."""
    params = {f"v_{k}": v for k, v in values.items()}
    params.update({f"w_{k}": v for k, v in guard.items()})
    return params
