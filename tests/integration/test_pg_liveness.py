"""A pooled PostgreSQL connection is checked for life without a round trip, mostly.

``pool_pre_ping`` sent ``SELECT 1`` on every checkout: a round trip per
transaction. The pool now pings only a connection that idled for long, or whose
socket has something to read (a server ending a session says so, and closes it):
one the server ended is still found dead at checkout and replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from interlock.storage import db as db_module
from interlock.storage.db import Database
from tests.helpers import wait_for
from tests.support.postgres import pg_query

pytestmark = pytest.mark.postgres

_PID = "SELECT pg_backend_pid()"


@pytest.fixture
def pooled(
    pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Database, list[Any]]]:
    """A database whose pool holds one connection at a time; the pings it sends."""
    database = Database(pg_database_url, pool_size=1)
    pings: list[Any] = []
    real = database.engine.dialect.do_ping

    def ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", ping)
    yield database, pings
    database.dispose()


def _pid(database: Database) -> int:
    """The backend of the connection a write transaction checks out."""
    return int(database.run(lambda tx: tx.conn.exec_driver_sql(_PID).scalar()))


def test_a_connection_used_just_now_is_handed_out_again_with_no_ping(pooled):
    database, pings = pooled
    first = _pid(database)
    for _ in range(5):
        assert _pid(database) == first
        with database.read() as tx:
            assert tx.conn.exec_driver_sql(_PID).scalar() == first
    assert pings == []


def test_a_connection_idle_for_long_is_pinged_as_it_is_checked_out(pooled, monkeypatch):
    database, pings = pooled
    first = _pid(database)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
    assert _pid(database) == first
    assert len(pings) == 1


def test_a_pooled_connection_the_server_ended_is_replaced_as_it_is_checked_out(
    pooled, pg_database_url
):
    database, pings = pooled
    first = _pid(database)
    pg_query(pg_database_url, "SELECT pg_terminate_backend(%s)", first)
    wait_for(
        lambda: (
            not pg_query(pg_database_url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", first)
        ),
        message="the session to end",
    )
    second = _pid(database)  # no error: the dead connection was found and replaced
    assert second != first
    assert len(pings) == 1  # the dead one's, and only it
    assert _pid(database) == second
    assert len(pings) == 1
