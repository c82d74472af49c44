"""Write transactions: one kept connection on SQLite, a clean rollback on both backends."""

from __future__ import annotations

import gc
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from interlock.storage.db import Database
from interlock.storage.migrate import upgrade
from interlock.storage.tx import Tx
from tests.contract.conftest import NOW


def _audit(name: str, fail: bool = False) -> Any:
    def work(tx: Tx) -> str:
        tx.audit(at=NOW, actor="w", action="contract.done", object_type="c", object_id=name)
        if fail:
            raise ValueError(f"{name} failed")
        return name

    return work


def _names(db: Database) -> list[str]:
    with db.read() as tx:
        return sorted(e.object_id for e in tx.list_audit(object_type="c"))


def test_a_failed_write_transaction_rolls_back_and_the_next_one_commits(db: Database) -> None:
    db.run(_audit("first"))
    with pytest.raises(ValueError, match="second failed"):
        db.run(_audit("second", fail=True))
    assert db.run(_audit("third")) == "third"
    assert _names(db) == ["first", "third"]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(database)
    yield database
    database.dispose()


def test_sqlite_write_transactions_keep_one_connection(sqlite_db: Database) -> None:
    """No pool checkout per write transaction, from any thread; reads still use the pool."""
    sqlite_db.run(_audit("warm"))
    checkouts: list[int] = []
    sent: list[str] = []

    def checkout(dbapi_connection: Any, *_: Any) -> None:
        checkouts.append(id(dbapi_connection))

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        sent.append(sql)

    event.listen(sqlite_db.engine, "checkout", checkout)
    event.listen(sqlite_db.engine, "before_cursor_execute", seen)
    try:
        sqlite_db.run(_audit("one"))
        other = threading.Thread(target=sqlite_db.run, args=(_audit("two"),))
        other.start()
        other.join()
        with pytest.raises(ValueError):
            sqlite_db.run(_audit("three", fail=True))
        sqlite_db.run(_audit("four"))
        assert checkouts == []
        _names(sqlite_db)
        assert len(checkouts) == 1  # the read
    finally:
        event.remove(sqlite_db.engine, "checkout", checkout)
        event.remove(sqlite_db.engine, "before_cursor_execute", seen)
    # Listeners still see each write transaction's BEGIN IMMEDIATE (statement counts).
    assert sent.count("BEGIN IMMEDIATE") == 4
    assert sent.count("BEGIN") == 1
    assert _names(sqlite_db) == ["four", "one", "two", "warm"]


def test_sqlite_a_write_connection_broken_in_a_transaction_is_replaced(
    sqlite_db: Database,
) -> None:
    sqlite_db.run(_audit("first"))
    (kept,) = sqlite_db._writer

    def breaks(tx: Tx) -> None:
        _audit("lost")(tx)
        tx.conn.invalidate()  # as SQLAlchemy does on a disconnect

    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever SQLAlchemy raises for it
        sqlite_db.run(breaks, attempts=1)
    assert sqlite_db._writer == []
    assert sqlite_db.run(_audit("second")) == "second"
    assert sqlite_db._writer and sqlite_db._writer[0] is not kept
    assert _names(sqlite_db) == ["first", "second"]


def test_sqlite_a_locked_begin_is_sqlalchemys_error_and_retried(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE runs on the driver's cursor; "database is locked" stays transient."""
    sqlite_db.run(_audit("first"))
    sqlite_db._writer[0].connection.dbapi_connection.execute(  # type: ignore[union-attr]
        "PRAGMA busy_timeout=10"
    )
    path = sqlite_db.sqlite_file()
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            sqlite_db.run(_audit("locked"), attempts=1)
        attempts: list[int] = []

        def work(tx: Tx) -> str:
            attempts.append(1)
            return str(_audit("retried")(tx))

        # The other writer commits while run() waits to try again.
        monkeypatch.setattr("interlock.storage.db.time.sleep", lambda _: other.execute("COMMIT"))
        assert sqlite_db.run(work, attempts=2) == "retried"
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()
    assert attempts == [1]  # the BEGIN failed, not the work: it ran once
    assert _names(sqlite_db) == ["first", "retried"]


def test_sqlite_a_collected_database_closes_its_write_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gc.db'}")
    upgrade(database)
    database.run(_audit("one"))
    pool = database.engine.pool
    assert pool.checkedout() == 1  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del database
        gc.collect()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


def test_sqlite_sqlalchemys_own_statements_and_savepoints_join_the_write_transaction(
    sqlite_db: Database,
) -> None:
    """The BEGIN IMMEDIATE and COMMIT go to the driver; a statement through SQLAlchemy
    (which begins a transaction of its own, as it sees it) and a savepoint are part of
    that one transaction: committed with it, rolled back with it, one commit each."""
    from sqlalchemy import text

    sqlite_db.run(_audit("warm"))
    sent: list[str] = []
    commits: list[int] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        sent.append(sql)

    event.listen(sqlite_db.engine, "before_cursor_execute", seen)
    event.listen(sqlite_db.engine, "commit", lambda _conn: commits.append(1))
    try:
        with sqlite_db.transaction() as tx:
            _audit("kept")(tx)
            tx.conn.execute(text("UPDATE audit_head SET hash = hash WHERE id = 1"))
            with pytest.raises(ValueError), tx.conn.begin_nested():
                tx.conn.execute(text("DELETE FROM audit_events"))
                raise ValueError("the savepoint rolls back")
        with pytest.raises(ValueError, match="lost failed"), sqlite_db.transaction() as tx:
            tx.conn.execute(text("DELETE FROM audit_events"))
            _audit("lost", fail=True)(tx)
        sqlite_db.run(_audit("after"))
    finally:
        event.remove(sqlite_db.engine, "before_cursor_execute", seen)
    assert sent.count("BEGIN IMMEDIATE") == 3
    assert len(commits) == 2
    assert sqlite_db._writer and not sqlite_db._writer[0].in_transaction()
    assert _names(sqlite_db) == ["after", "kept", "warm"]
