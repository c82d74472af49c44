"""Fixtures shared by every tier: fresh databases on both backends, engines, runtimes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.engine.core import Engine, Settings
from interlock.storage.db import Database
from tests.support.pgpool import DatabasePool

pytest_plugins = [
    "tests.support.prometheus",
    "tests.support.http_target",
    "tests.support.postgres",
]

PG_ADMIN_URL = os.environ.get(
    "INTERLOCK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    b.strip()
    for b in os.environ.get("INTERLOCK_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once, not per test)."""
    from interlock.storage.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test clones with CREATE DATABASE … TEMPLATE."""
    from interlock.storage.migrate import upgrade

    name = f"interlock_tpl_{os.getpid()}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')
    db = Database(pg_url(name))
    upgrade(db)
    db.dispose()
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_pool(pg_template: str) -> Iterator[DatabasePool]:
    """This process's PostgreSQL test databases, cleaned between tests (tests/support/pgpool.py)."""
    pool = DatabasePool(PG_ADMIN_URL, pg_template, pg_url)
    yield pool
    pool.close()
    assert not pool.failed, pool.failed


def fresh_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "interlock.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    pool: DatabasePool = request.getfixturevalue("pg_pool")
    name = pool.take()
    request.addfinalizer(lambda: pool.give_back(name))
    return pg_url(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using a database runs once per backend (SQLite and PostgreSQL).

    A test that names its backend (``indirect=True``) is skipped when that backend is
    not in ``INTERLOCK_TEST_BACKENDS``: ``make test-fast`` touches no PostgreSQL.
    """
    if request.param not in BACKENDS:
        pytest.skip(f"{request.param} is not in INTERLOCK_TEST_BACKENDS")
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, migrated database on the test's backend."""
    return fresh_database_url(backend, tmp_path, request)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


FAST = Settings(lease_ttl=5.0, tick=0.05, poll_interval=0.2, kill_grace=1.0)


@pytest.fixture
def engine(db: Database) -> Engine:
    return Engine(db, settings=Settings(**FAST.__dict__))
