"""Per-day counts for the Prometheus exposition, kept by triggers: ``metric_days``.

``/metrics`` sums the whole history once per database (then only what is new);
it reads a few rows per UTC day from here instead of every row of the history.
A row counts, for one family, day and labels (``a``, ``b``):

- ``deployments``: service; environment, kind and outcome joined by ``SEP``;
  ``delivery_facts`` by ``finished_at``;
- ``durations``: environment; ``delivery_facts`` (a deployment's first row, if
  it reached its environment) by ``finished_at``, bucketed;
- ``lead_times``: service, environment; ``delivery_facts`` (a commit's first
  deploy there) by ``finished_at``, bucketed;
- ``incidents``: service, environment; ``incidents`` by ``opened_at``;
- ``restores``: environment; ``incidents`` by ``resolved_at``, bucketed;
- ``approval_waits``: environment; ``delivery_gates`` by ``finished_at``, bucketed;
- ``step_runs``: executor, state; ``nodes`` (steps that ran and ended) by
  ``finished_at``.

A histogram's row is one bucket: ``bucket`` is the index of the first bound
(:data:`~interlock.storage.metric_bounds.BOUNDS`) the value is at or under
(the number of bounds: over them all), ``total`` the sum of its values. A
counter's bucket is 0.

Database triggers keep the rows: every insert, delete and update of a row
they count moves its day's count (and sum) by the change, inside the
statement, so in the same transaction whatever writes it (the engine, a
migration, a repair by hand), backdated changes included. Steps spread their
counts over ``SHARDS`` rows by node id, so PostgreSQL workers ending steps at
once seldom wait on the same row; on PostgreSQL the families every finishing
deployment or decided gate moves (``deployments``, ``durations``,
``lead_times``, ``approval_waits``) spread theirs by row id too (migration
0023). SQLite has one writer, so there they keep one row (shard 0): sharding
would only cost. Readers sum a key over its shards (the shard a row was counted
in may differ from the one it is taken away from: only the sum is exact). A sum
moved by additions and subtractions may differ from a fresh sum in its last
bits; counts are exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, text

from interlock.storage.metric_bounds import BOUNDS

SHARDS = 8
DAY = 86400
BLOCK = 28  # days: past blocks' counts are moved into ``metric_blocks``
_FIRST = '"first"'  # a column named like a keyword (PostgreSQL's FIRST is not reserved)


@dataclass(frozen=True)
class Family:
    name: str
    table: str
    a: Callable[[str], str]  # the first label of row ``r`` (NEW, OLD or the table)
    b: Callable[[str], str]
    at: str  # the column whose day the row counts on
    counted: Callable[[str], str]
    columns: tuple[str, ...]  # an update of these can move the count
    value: Callable[[str], str] | None = None  # histograms: the value (not yet clamped)
    bounds: str | None = None
    sharded: tuple[str, ...] = ()  # the dialects whose counts spread over ``SHARDS`` rows
    key: str = "id"  # the column whose value picks the shard
    # The dialects where the count moves at commit (a deferred constraint trigger), not at
    # the write: a step's end, early in its transaction, locks its row only from there.
    deferred: tuple[str, ...] = ()


EVERYWHERE = ("postgresql", "sqlite")
CONCURRENT = ("postgresql",)  # several writers at once; SQLite has one


SEP = "\x1f"  # joins a deployment's environment, kind and outcome in ``b`` (in no name)
FAMILIES = (
    Family(
        "deployments",
        "delivery_facts",
        lambda r: f"{r}.service",
        lambda r: f"{r}.environment || '{SEP}' || {r}.kind || '{SEP}' || {r}.state",
        "finished_at",
        lambda r: f"{r}.finished_at IS NOT NULL",
        ("service", "environment", "kind", "state", "finished_at"),
        sharded=CONCURRENT,
    ),
    Family(
        "durations",
        "delivery_facts",
        lambda r: "''",
        lambda r: f"{r}.environment",
        "finished_at",
        lambda r: (
            f"({r}.position = 0 AND {r}.started_at IS NOT NULL"
            f" AND {r}.state NOT IN ('cancelled', 'not_reached'))"
        ),
        ("position", "environment", "state", "started_at", "finished_at"),
        lambda r: f"({r}.finished_at - {r}.started_at)",
        "duration",
        sharded=CONCURRENT,
    ),
    Family(
        "lead_times",
        "delivery_facts",
        lambda r: f"{r}.service",
        lambda r: f"{r}.environment",
        "finished_at",
        lambda r: f"({r}.{_FIRST} = 1 AND {r}.lead IS NOT NULL)",
        (_FIRST, "lead", "service", "environment", "finished_at"),
        lambda r: f"{r}.lead",
        "lead_time",
        sharded=CONCURRENT,
    ),
    Family(
        "incidents",
        "incidents",
        lambda r: f"COALESCE({r}.service, '')",
        lambda r: f"{r}.environment",
        "opened_at",
        lambda r: f"{r}.opened_at IS NOT NULL",
        ("service", "environment", "opened_at"),
    ),
    Family(
        "restores",
        "incidents",
        lambda r: "''",
        lambda r: f"{r}.environment",
        "resolved_at",
        lambda r: f"{r}.resolved_at IS NOT NULL",
        ("environment", "opened_at", "resolved_at"),
        lambda r: f"({r}.resolved_at - {r}.opened_at)",
        "restore",
    ),
    Family(
        "approval_waits",
        "delivery_gates",
        lambda r: "''",
        lambda r: f"{r}.environment",
        "finished_at",
        lambda r: f"{r}.finished_at IS NOT NULL",
        ("environment", "finished_at", "wait"),
        lambda r: f"{r}.wait",
        "approval_wait",
        sharded=CONCURRENT,
        key="node_id",
    ),
    Family(
        "step_runs",
        "nodes",
        lambda r: f"{r}.executor",
        lambda r: f"{r}.state",
        "finished_at",
        lambda r: (
            f"({r}.kind = 'step' AND {r}.finished_at IS NOT NULL AND {r}.started_at IS NOT NULL)"
        ),
        ("kind", "executor", "state", "started_at", "finished_at"),
        sharded=EVERYWHERE,
        deferred=CONCURRENT,
    ),
)
# Sharded on PostgreSQL by migration 0023 (before it: one row, shard 0)
RESHARDED = ("deployments", "durations", "lead_times", "approval_waits")
KEY = "family, day, a, b, bucket, shard"


def _day(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor({column} / 86400.0) AS INTEGER)"
    return f"CAST({column} / 86400.0 AS INTEGER)"  # the floor, for times after 1970


def _clamped(value: str) -> str:
    return f"(CASE WHEN {value} < 0 THEN 0.0 ELSE {value} END)"


def _bucket(value: str, bounds: tuple[float, ...]) -> str:
    clamped = _clamped(value)
    whens = " ".join(
        f"WHEN {clamped} <= {float(bound)!r} THEN {i}" for i, bound in enumerate(bounds)
    )
    return f"(CASE {whens} ELSE {len(bounds)} END)"


def _row(family: Family, r: str, dialect: str, single: Collection[str] = ()) -> list[str]:
    """The key columns and the value of row ``r`` (without events), as SQL; the
    families named in ``single`` count on one row (shard 0) whatever the dialect."""
    bucket = "0"
    total = "0.0"
    if family.value is not None and family.bounds is not None:
        bucket = _bucket(family.value(r), BOUNDS[family.bounds])
        total = _clamped(family.value(r))
    sharded = dialect in family.sharded and family.name not in single
    shard = f"({r}.{family.key} % {SHARDS})" if sharded else "0"
    day = _day(f"{r}.{family.at}", dialect)
    return [f"'{family.name}'", day, family.a(r), family.b(r), bucket, shard, total]


def _move(family: Family, r: str, sign: int, dialect: str, single: Collection[str] = ()) -> str:
    """Add row ``r`` (``sign`` 1) or take it away (-1), if the family counts it."""
    name, day, a, b, bucket, shard, total = _row(family, r, dialect, single)
    return (
        f"INSERT INTO metric_days ({KEY}, events, total) "
        f"SELECT {name}, {day}, {a}, {b}, {bucket}, {shard}, {sign}, {sign} * {total} "
        f"WHERE {family.counted(r)} "
        f"ON CONFLICT ({KEY}) DO UPDATE SET events = metric_days.events + excluded.events, "
        "total = metric_days.total + excluded.total"
    )


def _families(tables: Collection[str] | None) -> list[Family]:
    return [f for f in FAMILIES if tables is None or f.table in tables]


def trigger_ddl(
    dialect: str,
    tables: Collection[str] | None = None,
    single: Collection[str] = (),
    immediate: Collection[str] = (),
) -> list[str]:
    """The statements that create the triggers on ``tables`` (``None``: all); the
    families named in ``single`` count on one row (as before migration 0023), those
    named in ``immediate`` at the write even where they are deferred (before 0026)."""
    found = []
    for f in _families(tables):

        def move(r: str, sign: int, f: Family = f) -> str:
            return _move(f, r, sign, dialect, single)

        name = f"metric_days_{f.name}"
        columns = ", ".join(f.columns)
        if dialect == "postgresql":
            found.append(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                "BEGIN\n"
                f"  IF TG_OP <> 'INSERT' THEN {move('OLD', -1)}; END IF;\n"
                f"  IF TG_OP <> 'DELETE' THEN {move('NEW', 1)}; END IF;\n"
                "  RETURN NULL;\n"
                "END $$"
            )
            if dialect in f.deferred and f.name not in immediate:
                # At commit: the rows of metric_days it moves are locked only from there
                # (under the audit head's lock, which the commit holds already), not from
                # the write on: two workers ending steps on the same shard never wait for
                # each other's whole transaction.
                found.append(
                    f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF"
                    f" {columns} ON {f.table} DEFERRABLE INITIALLY DEFERRED"
                    f" FOR EACH ROW EXECUTE FUNCTION {name}()"
                )
                continue
            found.append(
                f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {columns}"
                f" ON {f.table} FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
            continue
        found.append(
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {f.table} WHEN {f.counted('NEW')}"
            f" BEGIN {move('NEW', 1)}; END"
        )
        found.append(
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {f.table} WHEN {f.counted('OLD')}"
            f" BEGIN {move('OLD', -1)}; END"
        )
        found.append(
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {columns} ON {f.table}"
            f" WHEN {f.counted('OLD')} OR {f.counted('NEW')}"
            f" BEGIN {move('OLD', -1)}; {move('NEW', 1)}; END"
        )
    return found


def drop_ddl(dialect: str, tables: Collection[str] | None = None) -> list[str]:
    """The statements that drop the triggers on ``tables`` (``None``: all)."""
    found = []
    for f in _families(tables):
        name = f"metric_days_{f.name}"
        if dialect == "postgresql":
            found.append(f"DROP TRIGGER IF EXISTS {name} ON {f.table}")
            found.append(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            found += [
                f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("insert", "delete", "update")
            ]
    return found


def backfill_sql(dialect: str) -> list[str]:
    """``INSERT ... SELECT`` statements that count every existing row (an empty table)."""
    found = []
    for f in FAMILIES:
        name, day, a, b, bucket, shard, total = _row(f, f.table, dialect)
        found.append(
            f"INSERT INTO metric_days ({KEY}, events, total) "
            f"SELECT {name}, {day} AS day, {a} AS a, {b} AS b, {bucket} AS bucket,"
            f" {shard} AS shard, COUNT(*), SUM({total}) FROM {f.table}"
            f" WHERE {f.counted(f.table)} GROUP BY 2, 3, 4, 5, 6"
        )
    return found


def recount_metric_days(conn: Any) -> None:
    """Count every day again from the rows (``interlock db rebuild-metrics``), then move
    the whole blocks before the last one into ``metric_blocks`` (when it exists)."""
    blocks = inspect(conn).has_table("metric_blocks")  # (migration 0022)
    if conn.dialect.name == "postgresql":
        # What this transaction wrote before is counted now, not at its commit, after
        # the recount (which counts those rows too): the deferred counts (migration 0026)
        # fire here; and the rest of this transaction counts as it writes.
        conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    conn.execute(text("DELETE FROM metric_days"))
    if blocks:
        conn.execute(text("DELETE FROM metric_blocks"))
    for statement in backfill_sql(conn.dialect.name):
        conn.execute(text(statement))
    if blocks:
        compact_metric_days(conn)


def _horizon(before_day: int) -> int:
    """The first day not moved into blocks: the start of the block of the day
    before ``before_day`` (so the day of a mark, and the one before, stay days)."""
    return ((before_day - 1) // BLOCK) * BLOCK


def compact_metric_days(conn: Any, before_day: int | None = None) -> int:
    """Move the counts of whole blocks that ended before ``before_day`` (``None``:
    today, UTC) from ``metric_days`` into ``metric_blocks``; the rows moved.

    Called as the exposition saves its totals (``before_day``: the day of the mark
    saved, which later ranges start after), after a recount, and by migration 0022.
    A count that a trigger adds to such a day later stays a day row until the next
    compaction; readers add both tables up (in one statement). A range that cuts a
    moved block (one starting at a mark older than the block) reads the rows of its
    part of the block instead.
    """
    if before_day is None:
        before_day = math.floor(time.time() / DAY)
    horizon = _horizon(before_day)
    block = f"(day / {BLOCK})"
    columns = "family, block, a, b, bucket, events, total"
    upsert = (
        "ON CONFLICT (family, block, a, b, bucket) DO UPDATE SET"
        " events = metric_blocks.events + excluded.events,"
        " total = metric_blocks.total + excluded.total"
    )
    grouped = (
        f"SELECT family, {block}, a, b, bucket, SUM(events), SUM(total) FROM {{source}}"
        f" WHERE day < :horizon GROUP BY family, {block}, a, b, bucket"
        " HAVING SUM(events) <> 0 OR SUM(total) <> 0"
    )
    bound = {"horizon": horizon}
    if conn.dialect.name == "postgresql":
        # One statement: what it deletes (locked, as last committed) is what it adds.
        moved = conn.execute(
            text(
                "WITH moved AS (DELETE FROM metric_days WHERE day < :horizon"
                " RETURNING family, day, a, b, bucket, events, total)"
                f" INSERT INTO metric_blocks ({columns}) "
                + grouped.format(source="moved")
                + f" {upsert}"
            ),
            bound,
        )
        return int(moved.rowcount or 0)
    conn.execute(
        text(
            f"INSERT INTO metric_blocks ({columns}) "
            + grouped.format(source="metric_days")
            + f" {upsert}"
        ),
        bound,
    )
    return int(conn.execute(text("DELETE FROM metric_days WHERE day < :horizon"), bound).rowcount)


def install_metric_days(conn: Any) -> None:
    """Count what is there and create the triggers that keep the counts (migration 0020)."""
    recount_metric_days(conn)
    for statement in trigger_ddl(conn.dialect.name):
        conn.execute(text(statement))


@contextmanager
def counting_paused(conn: Any, tables: Collection[str] | None = None) -> Iterator[None]:
    """Write rows of ``tables`` (``None``: every counted table) in bulk without counting
    each, then count every day again at once (in the caller's transaction).

    The triggers are dropped, and created again after the days are recounted: a
    bulk load (``rebuild_delivery``, ``bench/metrics.py``) pays one set-wide
    statement per family instead of an upsert per row it writes or deletes.
    """
    dialect = conn.dialect.name
    for statement in drop_ddl(dialect, tables):
        conn.execute(text(statement))
    yield
    recount_metric_days(conn)
    for statement in trigger_ddl(dialect, tables):
        conn.execute(text(statement))


def merge_shards(conn: Any, families: Collection[str]) -> None:
    """Add the counts of every shard of ``families`` into shard 0 and delete the
    others (what migration 0023's downgrade leaves: one row per key, as before)."""
    if not families:
        return
    named = {f"f{n}": name for n, name in enumerate(sorted(families))}
    among = ", ".join(f":{key}" for key in named)
    columns = "family, day, a, b, bucket"
    conn.execute(
        text(
            f"INSERT INTO metric_days ({KEY}, events, total)"
            f" SELECT {columns}, 0, SUM(events), SUM(total) FROM metric_days"
            f" WHERE family IN ({among}) AND shard <> 0 GROUP BY {columns}"
            f" ON CONFLICT ({KEY}) DO UPDATE SET events = metric_days.events + excluded.events,"
            " total = metric_days.total + excluded.total"
        ),
        named,
    )
    conn.execute(text(f"DELETE FROM metric_days WHERE family IN ({among}) AND shard <> 0"), named)
