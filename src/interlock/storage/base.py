"""Shared helpers for the query modules."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.dml import Update

from interlock.errors import NotFound
from interlock.storage.facts.stale import StaleFacts
from interlock.storage.handle import DatabaseHandle

T = TypeVar("T")


def found(record: T | None, what: str) -> T:
    """``record``, or :class:`~interlock.errors.NotFound` ("no <what>") when it is missing.

    What the ``require_*`` look-ups return: a row the caller assumes exists.
    """
    if record is None:
        raise NotFound(f"no {what}")
    return record


class QueryBase:
    conn: Connection
    db: DatabaseHandle
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


def update_params(values: Mapping[str, object], guard: Mapping[str, object]) -> dict[str, object]:
    """The parameters of a :func:`guarded_update` statement."""
    params = {f"v_{k}": v for k, v in values.items()}
    params.update({f"w_{k}": v for k, v in guard.items()})
    return params
