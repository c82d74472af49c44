"""Shared helpers for the query modules."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import JSON, Table, bindparam, update
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import Update

from interlock.errors import NotFound
from interlock.storage.facts.stale import StaleFacts
from interlock.storage.handle import DatabaseHandle
from interlock.storage.types import load_json

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
    memo: dict[str, Any]
    stale: StaleFacts
    _later: list[tuple[Prepared, Mapping[str, Any]]]

    def send_later(self, prepared: Prepared, params: Mapping[str, Any]) -> None:
        """Run a write whose answer no one reads: on PostgreSQL with the next :meth:`send_now`.

        Statements sent later go out in the order they were given, ahead of the
        next :meth:`send_now`'s and in its round trip; the transaction sends what
        is left just before it commits. So nothing may read what they write before
        that, and any statement run directly meanwhile runs before them: for the
        writes the commit's last moments make (a release's revision, the facts
        of a gate), which only the commit needs. Elsewhere (SQLite, in process) it
        runs now.
        """
        if self.dialect == "postgresql":
            self._later.append((prepared, params))
        else:
            prepared.run(self.conn, params)

    def send_now(
        self, *calls: tuple[Prepared, Mapping[str, Any]], commit: bool = False
    ) -> list[PreparedResult]:
        """What :meth:`send_later` holds, then ``calls``, in one round trip
        (:func:`run_together`, ``commit`` as it takes it); the answers to ``calls``."""
        held, self._later = self._later, []
        return run_together(self.conn, [*held, *calls], commit=commit)[len(held) :]

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


_prepared_updates: dict[int, Prepared] = {}


def prepared_update(table: Table, where: Iterable[str], values: Iterable[str]) -> Prepared:
    """:func:`guarded_update` as a :class:`Prepared` statement, built once per shape."""
    statement = guarded_update(table, where, values)
    found = _prepared_updates.get(id(statement))
    if found is None:
        with _updates_lock:
            found = _prepared_updates.setdefault(id(statement), Prepared(statement))
    return found


def update_params(values: Mapping[str, object], guard: Mapping[str, object]) -> dict[str, object]:
    """The parameters of a :func:`guarded_update` statement."""
    params = {f"v_{k}": v for k, v in values.items()}
    params.update({f"w_{k}": v for k, v in guard.items()})
    return params


class Prepared:
    """A Core statement compiled once per dialect and run through the driver's cursor.

    For the few statements every step runs. SQLAlchemy's own execution costs
    tens of microseconds of Python per statement (the cache key, the parameters,
    the result's set-up), several times what SQLite spends running it. The SQL
    is what SQLAlchemy renders for the dialect, with its bind and result types
    applied as it would; ``before_cursor_execute`` listeners see each statement
    (on SQLite, those there when its transaction began: see :func:`driver`);
    driver errors come out as SQLAlchemy's ``DBAPIError`` subclasses, so
    ``Database.run`` retries them as before. No expanding (``IN``) parameters.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        _every_prepared.append(self)

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled.setdefault(dialect.name, _Compiled(self.statement, dialect))
        return found

    def run(self, conn: Connection, params: Mapping[str, Any]) -> PreparedResult:
        """Execute with ``params`` (by bind name) in ``conn``'s transaction."""
        compiled = self._compiled.get(conn.dialect.name) or self._for(conn.dialect)
        return compiled.run(conn, params)

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (``executemany``), for INSERTs."""
        self._for(conn.dialect).run(conn, rows, many=True)


# Every Prepared statement made in this process (they live as long as it does).
_every_prepared: list[Prepared] = []


def compile_prepared(dialect: Dialect) -> int:
    """Compile for ``dialect`` every :class:`Prepared` statement made so far; how many.

    A statement is otherwise compiled the first time it runs: tens of them in
    a process's first steps, each a few milliseconds of SQLAlchemy's compiler,
    which a worker pool pays as it starts instead (``Database.warm``). One that
    does not compile for this dialect (another backend's own) is left alone.
    """
    done = 0
    for prepared in list(_every_prepared):
        try:
            prepared._for(dialect)
        except Exception:  # noqa: BLE001 - it fails again, and is reported, if it ever runs
            continue
        done += 1
    return done


class PreparedResult:
    """The rows a :class:`Prepared` statement returned (sequences), and its row count."""

    __slots__ = ("keys", "rowcount", "rows")

    def __init__(self, keys: list[str], rows: list[Sequence[Any]], rowcount: int) -> None:
        self.keys = keys
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> dict[str, Any] | None:
        return dict(zip(self.keys, self.rows[0], strict=True)) if self.rows else None


class _Compiled:
    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql: str = compiled.string
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        processors = compiled._bind_processors
        self.fixed = {n: b.effective_value for n, b in binds.items() if not b.required}
        self.names = list(compiled.positiontup) if compiled.positional else list(binds)
        self.positional: bool = compiled.positional
        self.pick = _picker(self.names)
        self.processed = [
            (i, processors[name])
            for i, name in enumerate(self.names)
            if processors.get(name) is not None
        ]
        self.columns = compiled._result_columns
        self.keys = [c.keyname for c in self.columns]
        # The result types' processors as (column index, processor), known once the
        # driver described the columns (as SQLAlchemy does, by the type code each
        # one reports); only the columns that have one.
        self.results: list[tuple[int, Any]] | None = None
        self.error = dialect.loaded_dbapi.Error
        self.dialect = dialect

    def _params(self, params: Mapping[str, Any]) -> Any:
        """The driver's parameters: in the statement's order, bind types applied."""
        values = self.pick({**self.fixed, **params} if self.fixed else params)
        if self.processed:
            values = list(values)
            for i, process in self.processed:
                if values[i] is not None:
                    values[i] = process(values[i])
        if self.positional:
            return tuple(values)
        return dict(zip(self.names, values, strict=True))

    def run(self, conn: Connection, params: Any, *, many: bool = False) -> PreparedResult:
        bound = [self._params(p) for p in params] if many else self._params(params)
        raw, dispatch = getattr(conn, BEGUN, None) or driver(conn)
        cursor = raw.cursor()
        try:
            if dispatch:
                dispatch(conn, cursor, self.sql, bound, None, many)
            if many:
                cursor.executemany(self.sql, bound)
                return PreparedResult(self.keys, [], cursor.rowcount)
            cursor.execute(self.sql, bound)
            if cursor.description is None:  # nothing to read (no RETURNING)
                return PreparedResult(self.keys, [], cursor.rowcount)
            return self._rows(cursor)
        except self.error as exc:
            raise DBAPIError.instance(
                self.sql, bound, exc, self.error, dialect=self.dialect
            ) from exc
        finally:
            cursor.close()

    def send(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """Execute with ``params`` and return the cursor, its rows not fetched yet."""
        bound = self._params(params)
        raw, dispatch = driver(conn)
        cursor = raw.cursor()
        if dispatch:
            dispatch(conn, cursor, self.sql, bound, None, False)
        cursor.execute(self.sql, bound)
        return cursor

    def collect(self, cursor: Any) -> PreparedResult:
        """The rows of a statement executed on ``cursor`` by :meth:`send`."""
        try:
            if cursor.description is None:
                return PreparedResult(self.keys, [], cursor.rowcount)
            return self._rows(cursor)
        except self.error as exc:
            raise DBAPIError.instance(
                self.sql, None, exc, self.error, dialect=self.dialect
            ) from exc

    def _rows(self, cursor: Any) -> PreparedResult:
        rows = cursor.fetchall()
        if not rows or not self.columns:  # (a textual statement's columns are not known)
            return PreparedResult(self.keys, rows, cursor.rowcount)
        results = self.results
        if results is None:
            found = [
                _result_processor(c.type, self.dialect, d[1])
                for c, d in zip(self.columns, cursor.description, strict=True)
            ]
            results = self.results = [(i, p) for i, p in enumerate(found) if p is not None]
        if results:
            rows = [list(row) for row in rows]
            for values in rows:
                for i, process in results:
                    if values[i] is not None:
                        values[i] = process(values[i])
        return PreparedResult(self.keys, rows, cursor.rowcount)


def _result_processor(type_: Any, dialect: Dialect, coltype: Any) -> Any:
    """The column type's result processor, as SQLAlchemy would apply it.

    Except a JSON column's on SQLite, when the engine reads JSON with
    :func:`~interlock.storage.types.load_json`: that itself, where SQLAlchemy's
    calls it through two wrappers of its own (three Python calls a value, and a
    step reads about five).
    """
    if (
        dialect.name == "sqlite"
        and getattr(dialect, "_json_deserializer", None) is load_json
        and isinstance(type_.dialect_impl(dialect), JSON)
    ):
        return load_json
    return type_._cached_result_processor(dialect, coltype)


# The attribute of a Connection that holds what its transaction's BEGIN found (its
# driver connection and its listeners, see driver): set on SQLite, where Interlock
# sends the BEGIN itself (storage/db.py), so that its statements look neither up.
BEGUN = "_interlock_begun"


def driver(conn: Connection) -> tuple[Any, Any]:
    """``conn``'s driver connection, and its ``before_cursor_execute`` listeners (or None).

    As looked up when its transaction began (:data:`BEGUN`), if it was; a listener
    added in the middle of a transaction hears from the next one on.
    """
    dispatch = None
    if conn._has_events or conn.engine._has_events:  # (as SQLAlchemy looks, first)
        dispatch = conn.dispatch.before_cursor_execute or None
    return conn.connection.dbapi_connection, dispatch


def _picker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """What takes the values of ``names`` out of the parameters, in that order."""
    if len(names) > 1:
        return itemgetter(*names)  # a tuple, picked in C
    if names:
        name = names[0]  # (one name: itemgetter would give the value, not a 1-tuple)
        return lambda params: (params[name],)
    return lambda params: ()


def run_together(
    conn: Connection,
    calls: Sequence[tuple[Prepared, Mapping[str, Any]]],
    *,
    commit: bool = False,
) -> list[PreparedResult]:
    """Run independent :class:`Prepared` statements, in order, in one round trip.

    On PostgreSQL they go out in psycopg's pipeline mode: all sent, then one
    sync, then every answer read. The server still runs them one after the
    other, each (under READ COMMITTED) on a snapshot taken as it starts, so a
    statement that waits for a row lock holds back the ones after it, exactly
    as if they had been sent one by one; only the client's waits in between are
    gone. (So a statement's parameters cannot depend on an earlier one's answer.)
    Elsewhere (SQLite, in process) they simply run one by one.

    ``commit`` (PostgreSQL only): ``COMMIT`` goes out behind them in the same
    round trip, so the transaction ends as soon as the server has run them, with
    no wait for the client in between; if one fails, nothing commits (the
    transaction is left failed, for the caller to roll back). The caller's
    ``commit()`` then finds nothing left to do.
    """
    postgres = conn.dialect.name == "postgresql"
    if not postgres or (len(calls) < 2 and not commit):
        return [prepared.run(conn, params) for prepared, params in calls]
    compiled = [prepared._for(conn.dialect) for prepared, _ in calls]
    raw: Any = conn.connection.dbapi_connection
    cursors: list[Any] = []
    try:
        try:
            with raw.pipeline():
                for statement, (_, params) in zip(compiled, calls, strict=True):
                    cursors.append(statement.send(conn, params))
                if commit:  # (not a statement of the transaction: no listener sees it)
                    cursors.append(raw.cursor())
                    cursors[-1].execute("COMMIT")
        except compiled[0].error as exc:  # (the server's message names what failed)
            failed = compiled[max(0, min(len(cursors), len(compiled)) - 1)]
            raise DBAPIError.instance(
                failed.sql, None, exc, failed.error, dialect=failed.dialect
            ) from exc
        sent = cursors[: len(compiled)]
        return [statement.collect(c) for statement, c in zip(compiled, sent, strict=True)]
    finally:
        for cursor in cursors:
            cursor.close()
