"""The database handle: engine from a URL, transactions, wake-up notifications.

Write transactions on SQLite begin with ``BEGIN IMMEDIATE`` under an
in-process lock (one writer at a time, no busy-waiting); on PostgreSQL they
are ordinary READ COMMITTED transactions whose contended rows are locked
explicitly (``FOR UPDATE``, ``SKIP LOCKED``). Audit events are buffered and
written last, just before commit, so the chain head is held for as short a
time as possible and never in the middle of other row locks.
"""

from __future__ import annotations

import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError

from interlock.errors import InvalidInput, StorageUnavailable
from interlock.storage.base import BEGUN, compile_prepared, driver
from interlock.storage.tx import Tx
from interlock.storage.types import load_json

log = logging.getLogger(__name__)
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not (url.startswith("sqlite:") or url.startswith("postgresql+psycopg://")):
        raise InvalidInput(
            f"unsupported database URL {redact_url(url)!r}: use sqlite:///PATH or "
            "postgresql://USER@HOST/DB",
            field="database_url",
        )
    return url


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None


class Database:
    """One database; :meth:`transaction` hands out a :class:`~interlock.storage.tx.Tx`."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        self._listeners: list[Callable[[set[str]], None]] = []
        self._release_listeners: list[Callable[[frozenset[int]], None]] = []
        self._local = threading.local()  # the transaction open in this thread, if any
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        # SQLite: the one connection write transactions use, kept checked out and
        # used by one thread at a time (the one holding _write_lock), so a write
        # transaction costs no pool checkout and return (see _sqlite_begin_write).
        # Closed when the Database is collected, as the pool would on dispose().
        self._writer: list[Connection] = []
        weakref.finalize(self, _close_all, self._writer)
        # Group commit (run_grouped): the works waiting, and the thread committing them.
        self._group: list[_Grouped] = []
        self._group_guard = threading.Lock()
        self._group_leader = threading.Lock()
        # (seq, hash) of the audit chain's head as this process last wrote it:
        # a hint that saves a read per commit, checked by a guarded update.
        self.audit_head_seen: tuple[int, str] | None = None
        self.audit_head_pause = 0  # transactions left before guessing again, after a miss
        self.audit_hooks: list[Callable[[Any, list[dict[str, Any]]], None]] = []
        self.ready_hooks: list[Callable[[Any], None]] = []
        if self.dialect == "sqlite":
            path = sqlite_path(self.url)
            if path is not None and str(path) not in ("", ":memory:"):
                path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                self.url,
                connect_args={"check_same_thread": False, "timeout": 30},
                json_deserializer=load_json,  # (every step reads a few JSON columns)
                pool_size=pool_size,
                max_overflow=pool_size,
            )
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=1800,
            )
            event.listen(self.engine, "checkin", _pg_checkin)
            dialect = self.engine.dialect
            event.listen(
                self.engine,
                "checkout",
                lambda dbapi, record, _: _pg_checkout(dbapi, record, dialect),
            )

    # -- notifications -------------------------------------------------------
    def on_commit(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener(channels)`` after every commit that notified something."""
        self._listeners.append(listener)

    def on_release_change(self, listener: Callable[[frozenset[int]], None]) -> Callable[[], None]:
        """Call ``listener(release_ids)`` after every commit that moved releases' revisions.

        In this process only: a long-poll learns at once of what this process
        committed, and polls for what others did. Returns what removes the listener.
        """
        self._release_listeners.append(listener)

        def remove() -> None:
            if listener in self._release_listeners:
                self._release_listeners.remove(listener)

        return remove

    def _fire(self, listeners: list[Callable[[Any], None]], what: Any) -> None:
        for listener in list(listeners):
            try:
                listener(what)
            except Exception:  # a listener must never break a committed transaction
                log.exception("commit listener failed")

    # -- transactions --------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction; commits on success, rolls back on any exception.

        Inside another transaction of the same thread it joins that one (so a
        helper that opens its own transaction never deadlocks its caller).
        """
        current = getattr(self._local, "tx", None)
        if current is not None:
            if current.read_only:
                raise RuntimeError("a write transaction cannot start inside a read-only one")
            yield current
            return
        lock = self._write_lock
        if lock is not None:
            lock.acquire()
        tx: Tx | None = None
        committed = False
        try:
            if lock is not None:  # SQLite: BEGIN and COMMIT on the driver's connection
                tx = Tx(self._sqlite_begin_write(), self)
                self._local.tx = tx
                try:
                    yield tx
                    tx.before_commit()
                except BaseException:
                    self._local.tx = None
                    try:
                        self._sqlite_end_write(tx.conn, commit=False)
                    except Exception:  # (what went wrong first is what the caller hears)
                        log.debug("rolling back failed", exc_info=True)
                    raise
                self._local.tx = None
                self._sqlite_end_write(tx.conn, commit=True)
            else:
                with self._write_connection() as conn:
                    with conn.begin():
                        tx = Tx(conn, self)
                        self._local.tx = tx
                        try:
                            yield tx
                            tx.before_commit()
                        finally:
                            self._local.tx = None
            committed = True
            channels, changed = tx.channels, tx.changed_releases
        finally:
            if lock is not None:
                lock.release()
            if tx is not None and tx.ended:  # first: a worker waits on it to start a step
                self._fire(tx.ended, committed)
        if channels:
            self._fire(self._listeners, channels)
        if changed:
            self._fire(self._release_listeners, changed)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction (a consistent snapshot on both backends)."""
        current = getattr(self._local, "tx", None)
        if current is not None:  # read what the enclosing transaction sees
            yield current
            return
        with self._connect() as conn:
            with conn.begin() as trans:
                tx = Tx(conn, self, read_only=True)
                self._local.tx = tx
                try:
                    yield tx
                finally:
                    self._local.tx = None
                    trans.rollback()

    def run(self, work: Callable[[Tx], T], *, attempts: int = 5) -> T:
        """Run ``work(tx)`` in a write transaction, retrying transient conflicts."""
        if getattr(self._local, "tx", None) is not None:
            with self.transaction() as tx:  # joins the enclosing one: no retry of its own
                return work(tx)
        delay = 0.01
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as tx:
                    return work(tx)
            except OperationalError as exc:
                if attempt == attempts or not _transient(exc):
                    raise
            except DBAPIError as exc:
                if attempt == attempts or not _transient(exc):
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def run_grouped(self, work: Callable[[Tx], T]) -> T:
        """:meth:`run`, committed together with the works other threads hand in meanwhile.

        Group commit, for the workers recording their steps: on SQLite a commit
        is one writer's fsync at a time, so while one thread commits, the works
        that arrive queue up, and the next of their threads runs them all in one
        transaction and one fsync, in the order they came (as the single writer
        would have run them one by one). Each thread returns only once its work
        is committed; a work that raises rolls the group back and every work of
        it runs again alone (:meth:`run`, with its retries), so one failure
        never costs another work its commit. On PostgreSQL (row locks, several
        writers at once) it is :meth:`run`.
        """
        if self._write_lock is None or getattr(self._local, "tx", None) is not None:
            return self.run(work)
        slot = _Grouped(work)
        with self._group_guard:
            self._group.append(slot)
        with self._group_leader:
            if not slot.done:
                with self._group_guard:
                    batch, self._group = self._group, []
                self._commit_group(batch)
        if slot.alone:
            return self.run(work)
        return slot.result  # type: ignore[no-any-return]

    def _commit_group(self, batch: list[_Grouped]) -> None:
        try:
            with self.transaction() as tx:
                for slot in batch:
                    slot.result = slot.work(tx)
        except BaseException as exc:  # nothing of the group committed: each runs alone
            for slot in batch:
                slot.alone = True
            if not isinstance(exc, Exception):
                raise
        finally:
            for slot in batch:
                slot.done = True

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    def _open(self) -> Connection:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise StorageUnavailable(
                f"cannot connect to the database {redact_url(self.url)}: "
                f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
            ) from None

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """PostgreSQL: the pooled connection of a write transaction, as for reads
        (SQLite's one kept writer connection: :meth:`_sqlite_begin_write`)."""
        with self._connect() as conn:
            yield conn.execution_options(interlock_write=True)

    def _sqlite_begin_write(self) -> Connection:
        """SQLite's one writer connection, its ``BEGIN IMMEDIATE`` sent.

        The connection is checked out once and kept, used by one thread at a
        time (the one holding ``_write_lock``): a pool checkout, its reset and
        its return cost more Python than a step's commit. One left unusable
        (invalidated, or still in a transaction after an error) is closed and
        the next write transaction opens a new one.

        The BEGIN goes out on the driver's connection, not through SQLAlchemy's
        ``Connection.begin``: its transaction object, its events and its commit
        cost about 30 Python calls a transaction, more than SQLite spends
        beginning and committing (the fsync aside). ``before_cursor_execute`` and
        ``commit`` listeners still hear of both. A statement run through
        SQLAlchemy inside (or a savepoint) joins this transaction
        (:func:`_sqlite_begin` sends no second BEGIN), and
        :meth:`_sqlite_end_write` ends SQLAlchemy's with it.
        """
        if not self._writer:
            self._writer.append(self._open().execution_options(interlock_write=True))
        conn = self._writer[0]
        try:
            found = driver(conn)
            dbapi_connection, dispatch = found
            if dispatch:
                cursor = dbapi_connection.cursor()
                try:
                    dispatch(conn, cursor, _BEGIN_WRITE, (), None, False)
                finally:
                    cursor.close()
            dbapi_connection.execute(_BEGIN_WRITE)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                _BEGIN_WRITE, (), exc, sqlite3.Error, dialect=conn.dialect
            ) from exc
        except BaseException:
            if conn.invalidated or conn.in_transaction():
                _close_all(self._writer)
            raise
        setattr(conn, BEGUN, found)  # what the transaction's prepared statements run on
        return conn

    def _sqlite_end_write(self, conn: Connection, *, commit: bool) -> None:
        """Commit (or roll back) what :meth:`_sqlite_begin_write` began, SQLAlchemy's
        transaction with it if a statement of its own began one; on any failure, and
        with the connection left unusable, the next write opens a new connection."""
        dbapi_connection, _ = getattr(conn, BEGUN)
        ended = False
        try:
            if conn.invalidated:
                if commit:
                    raise StorageUnavailable("the database connection was lost in a transaction")
            elif conn.in_transaction():  # (SQLAlchemy began one, inside this one)
                if commit:
                    conn.commit()
                else:
                    conn.rollback()
                ended = True
            else:
                if conn._has_events or conn.engine._has_events:  # (as SQLAlchemy looks)
                    listeners = conn.dispatch.commit if commit else conn.dispatch.rollback
                    if listeners:
                        listeners(conn)
                try:
                    if commit:
                        dbapi_connection.commit()
                    else:
                        dbapi_connection.rollback()
                except sqlite3.Error as exc:
                    sql = "COMMIT" if commit else "ROLLBACK"
                    raise DBAPIError.instance(
                        sql, (), exc, sqlite3.Error, dialect=conn.dialect
                    ) from exc
                ended = True
        finally:
            if not ended or dbapi_connection.in_transaction:
                _close_all(self._writer)

    def warm(self) -> None:
        """Compile the statements every step runs (:func:`compile_prepared`) now, so the
        first steps after a start do not (a worker pool calls it as it starts)."""
        compile_prepared(self.engine.dialect)

    def dispose(self) -> None:
        if self._write_lock is not None:
            with self._write_lock:
                _close_all(self._writer)
        self.engine.dispose()

    # -- schema --------------------------------------------------------------
    def schema_revision(self) -> str | None:
        """The Alembic revision of the database, ``None`` when it has no schema yet."""
        with self._connect() as conn:
            if self.dialect == "sqlite":
                found = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
                ).first()
            else:
                found = conn.exec_driver_sql("SELECT to_regclass('alembic_version')").first()
                found = found if found and found[0] else None
            if not found:
                return None
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            return str(row[0]) if row else None

    def sqlite_file(self) -> Path | None:
        return sqlite_path(self.url) if self.dialect == "sqlite" else None

    def hold_exclusive(self) -> TextIO | None:
        """On SQLite, make sure this is the only server on the file; keep the result alive.

        The embedded workers are then the only ones that can hold leases, so a
        restarting server may recover every running step at once.
        """
        path = self.sqlite_file()
        if path is None:
            return None
        import fcntl

        handle = open(f"{path}.lock", "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StorageUnavailable(
                f"another Interlock server ({holder}) is using {path}; stop it first, "
                "or use PostgreSQL to run several servers"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        return handle


class _Grouped:
    """A work handed to :meth:`Database.run_grouped`, and what became of it."""

    __slots__ = ("alone", "done", "result", "work")

    def __init__(self, work: Callable[[Tx], Any]) -> None:
        self.work = work
        self.result: Any = None
        self.done = False  # committed (or handed back to run alone)
        self.alone = False  # its group failed: run it again by itself


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Interlock issues BEGIN itself (see _sqlite_begin), so pysqlite must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode a commit is on disk when it returns, so a power cut
    # never loses a transition that was reported as done. NORMAL would be
    # faster and still never corrupt the file, but could lose the last commits.
    synchronous = os.environ.get("INTERLOCK_SQLITE_SYNCHRONOUS", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        synchronous = "FULL"
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _close_all(connections: list[Connection]) -> None:
    while connections:
        try:
            connections.pop().close()
        except Exception:  # closing a broken connection must not hide why it broke
            log.debug("closing a connection failed", exc_info=True)


_BEGIN_WRITE = "BEGIN IMMEDIATE"
_BEGIN_READ = "BEGIN"


def _sqlite_begin(conn: Connection) -> None:
    """``BEGIN IMMEDIATE`` for a write transaction, ``BEGIN`` for a read, on the driver's cursor.

    Not through ``exec_driver_sql``: its statement machinery costs several
    times what SQLite spends beginning. ``before_cursor_execute`` listeners
    still see it, and a driver error comes out as SQLAlchemy's (``database is
    locked`` is retried by :meth:`Database.run` as before).
    """
    dbapi_connection, dispatch = found = driver(conn)
    if dbapi_connection.in_transaction:
        return  # the writer's, begun by Database._sqlite_begin_write: this joins it
    sql = _BEGIN_WRITE if conn.get_execution_options().get("interlock_write") else _BEGIN_READ
    setattr(conn, BEGUN, found)  # what the transaction's prepared statements run on
    cursor = dbapi_connection.cursor()
    try:
        if dispatch:
            dispatch(conn, cursor, sql, (), None, False)
        cursor.execute(sql)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


# PostgreSQL: a pooled connection idle for longer than this is pinged as it is checked out.
PING_AFTER_IDLE = 10.0


def _pg_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _pg_checkout(dbapi_connection: Any, record: Any, dialect: Any) -> None:
    """Hand out a pooled PostgreSQL connection only if it is alive, mostly with no round trip.

    A server that ends a session (``pg_terminate_backend``, a restart, an idle
    timeout) says so on its socket, and closes it: an idle connection whose
    socket has anything to read is pinged (``SELECT 1``), as is one idle for
    longer than :data:`PING_AFTER_IDLE` (a peer gone silently, a network
    change); any other is handed out as it is, where ``pool_pre_ping`` pinged
    every checkout (a round trip per transaction). A failed ping invalidates
    the pool's older connections and the checkout takes a new one, as
    ``pool_pre_ping`` does.
    """
    idle_since = record.info.pop("idle_since", None)
    if idle_since is None:  # connected just now
        return
    if time.monotonic() - idle_since < PING_AFTER_IDLE and not _has_news(dbapi_connection):
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise InvalidatePoolError(f"the pooled connection is gone: {exc}") from exc


def _has_news(dbapi_connection: Any) -> bool:
    """Whether an idle psycopg connection is broken or has something to read (a
    server's goodbye, its socket closed): without sending anything."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _transient(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower() if exc.orig else str(exc).lower()
    code = getattr(exc.orig, "sqlstate", None)
    return (
        code in ("40001", "40P01")  # serialization failure, deadlock detected
        or "database is locked" in message
        or "deadlock" in message
    )


def connect(url: str, *, pool_size: int = 10) -> Database:
    """Open the database at ``url`` (no schema check)."""
    return Database(url, pool_size=pool_size)
