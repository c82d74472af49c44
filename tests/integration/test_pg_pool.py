"""The PostgreSQL test databases (tests/support/pgpool.py): a reused one equals a new clone.

Each test here makes a pool of its own on this process's template and compares a
database given back and handed out again with a clone made just then: the same rows,
sequences where the template has them, the same schema; a test's leftover session is
ended and its name is gone; a database whose schema or statistics changed is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import BACKENDS, PG_ADMIN_URL, pg_url
from tests.support import pgpool
from tests.support.pgpool import DatabasePool
from tests.support.postgres import pg_query

pytestmark = pytest.mark.postgres


@pytest.fixture
def pool(request: pytest.FixtureRequest) -> Iterator[DatabasePool]:
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not in INTERLOCK_TEST_BACKENDS")
    made = DatabasePool(PG_ADMIN_URL, request.getfixturevalue("pg_template"), pg_url)
    yield made
    made.close()
    assert not made.failed, made.failed


def contents(name: str) -> dict[str, Any]:
    """Every row of every table, every sequence's position, the schema's fingerprint."""
    url = pg_url(name)
    found: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        found["fingerprint"] = pgpool.fingerprint(conn)
        for (table,) in conn.execute(pgpool._TABLES).fetchall():
            found[table] = sorted(map(repr, conn.execute(f"SELECT * FROM {table}").fetchall()))
        found["sequences"] = conn.execute(pgpool._SEQUENCES).fetchall()
    return found


def exists(name: str) -> bool:
    return bool(pg_query(PG_ADMIN_URL, "SELECT 1 FROM pg_database WHERE datname = %s", name))


def again(pool: DatabasePool, name: str) -> str:
    """``name`` given back; the database the pool hands out next."""
    pool.give_back(name)
    return pool.take()


def fresh(pool: DatabasePool) -> dict[str, Any]:
    """The contents of a clone of the template made now (dropped again)."""
    name = pool._create()
    try:
        return contents(name)
    finally:
        pool._drop(name)


def test_a_database_given_back_comes_back_as_a_new_clone_under_a_new_name(pool):
    first = pool.take()
    url = pg_url(first)
    pg_query(
        url, "INSERT INTO users (name, kind, created_at, created_by) VALUES ('ann', 'user', 1, 't')"
    )
    pg_query(
        url, "INSERT INTO users (name, kind, created_at, created_by) VALUES ('bob', 'user', 1, 't')"
    )
    pg_query(url, "UPDATE audit_head SET seq = 41, hash = 'x'")
    pg_query(url, "DELETE FROM metric_marks")
    left_over = psycopg.connect(url, autocommit=True)  # as a leaked client would hold

    second = again(pool, first)

    assert second != first and not exists(first) and exists(second)
    assert pool.counts == {"created": 1, "reused": 1, "discarded": 0}
    with pytest.raises(psycopg.OperationalError):
        left_over.execute("SELECT 1")  # its session was ended, as a drop would
    left_over.close()
    assert contents(second) == fresh(pool)
    [(ident,)] = pg_query(
        pg_url(second),
        "INSERT INTO users (name, kind, created_at, created_by) "
        "VALUES ('cy', 'user', 1, 't') RETURNING id",
    )
    assert ident == 1  # ids start again where a new clone's start
    [(setting,)] = pg_query(pg_url(second), "SHOW synchronous_commit")
    assert setting == "off"


@pytest.mark.parametrize(
    "change",
    [
        ["ALTER TABLE users ADD COLUMN nickname text"],
        ["DROP INDEX ix_nodes_ready"],
        ["ALTER TABLE nodes DISABLE TRIGGER metric_days_step_runs"],
        ["CREATE TABLE extra (id int)"],
        ["ALTER DATABASE {name} SET work_mem = '8MB'"],
        [
            "INSERT INTO users (name, kind, created_at, created_by) VALUES ('ann', 'user', 1, 't')",
            "ANALYZE users",  # the planner's statistics would outlive the row
        ],
    ],
    ids=["column", "index", "trigger", "table", "setting", "statistics"],
)
def test_a_database_whose_schema_or_statistics_changed_is_dropped_not_reused(pool, change):
    first = pool.take()
    for statement in change:
        pg_query(pg_url(first), statement.format(name=first))

    second = again(pool, first)

    assert pool.counts == {"created": 2, "reused": 0, "discarded": 1}, pool.discarded
    assert not exists(first)
    assert contents(second) == fresh(pool)


def test_a_database_that_took_many_rows_is_dropped_rather_than_cleaned(pool, monkeypatch):
    monkeypatch.setattr(pgpool, "DELETED_ROWS_LIMIT", 5)
    first = pool.take()
    pg_query(
        pg_url(first),
        "INSERT INTO users (name, kind, created_at, created_by) "
        "SELECT 'u' || g, 'user', 1, 't' FROM generate_series(1, 6) AS g",
    )

    again(pool, first)

    assert pool.counts == {"created": 2, "reused": 0, "discarded": 1}, pool.discarded


def test_a_test_waits_for_the_database_being_cleaned_rather_than_making_one(pool):
    names = [pool.take()]
    for _ in range(3):
        names.append(again(pool, names[-1]))
    assert pool.counts == {"created": 1, "reused": 3, "discarded": 0}
    assert len(set(names)) == 4 and [exists(n) for n in names] == [False] * 3 + [True]


def test_closing_the_pool_drops_its_databases(pool):
    taken: Callable[[], str] = pool.take
    names = [taken(), taken()]
    for name in names:
        pool.give_back(name)
    pool.close()
    assert not any(exists(n) for n in names) and not pool._ready
