"""Fixtures shared by every tier: fresh databases on both backends, engines, runtimes."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.engine.core import Engine, Settings
from interlock.storage.db import Database

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


class Dropper:
    """Drops the databases of finished tests in a thread: off the next test's time.

    A drop took 60 ms to over a second (when it waits for a checkpoint) at the end
    of every PostgreSQL test; now the next test starts while it runs.
    """

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self.failed: list[str] = []
        self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reported when the session ends
                self.failed.append(f"{name}: {exc}")

    def close(self) -> None:
        self._names.put(None)
        self._thread.join(120)


@pytest.fixture(scope="session")
def pg_dropper(pg_template: str) -> Iterator[Dropper]:
    """Drops test databases in the background; waits for the last before the template goes."""
    dropper = Dropper()
    yield dropper
    dropper.close()
    assert not dropper.failed, dropper.failed


def fresh_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "interlock.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    template_name: str = request.getfixturevalue("pg_template")
    dropper: Dropper = request.getfixturevalue("pg_dropper")
    name = f"interlock_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    request.addfinalizer(lambda: dropper.drop(name))
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
