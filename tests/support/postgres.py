"""PostgreSQL-only tests: a fresh database (or a skip on a SQLite-only run), and probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, fresh_database_url


@pytest.fixture
def pg_database_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated PostgreSQL database for a test that only makes sense there."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not in INTERLOCK_TEST_BACKENDS")
    return fresh_database_url("postgresql", tmp_path, request)


def pg_query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection; the rows it returns."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)  # type: ignore[arg-type]
        return list(cursor.fetchall()) if cursor.description else []


def leader_of(url: str) -> str | None:
    """``host:pid`` of the process that runs the scheduler, or ``None``."""
    from interlock.storage.db import Database
    from interlock.storage.leader import current_leader

    db = Database(url)
    try:
        name = current_leader(db)
    finally:
        db.dispose()
    return name.rsplit(" ", 1)[-1] if name else None


def pid_of(instance: str | None) -> int | None:
    """The process id in an instance name (``host:pid``)."""
    return int(instance.rsplit(":", 1)[-1]) if instance else None


@pytest.fixture
def empty_pg_database_url(request: pytest.FixtureRequest) -> str:
    """A new PostgreSQL database with no schema at all, dropped after the test."""
    import uuid

    from tests.conftest import _pg_admin, pg_url

    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not in INTERLOCK_TEST_BACKENDS")
    name = f"interlock_e_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return pg_url(name)
