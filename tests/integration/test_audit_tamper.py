"""Tampering with the audit table by plain SQL is caught and the event is named."""

from __future__ import annotations

from sqlalchemy import text

from interlock.audit.chain import Checkpoint
from interlock.engine import views
from tests.helpers import running, wait_release_end

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: one, uses: noop}
"""


def _history(pilot) -> int:
    pilot.config(CONFIG)
    with running(pilot.engine):
        wait_release_end(pilot.engine, pilot.release("api@1.0.0").id)
    result = views.audit_verify(pilot.engine)
    assert result.ok and result.count > 6
    return result.count


def _sql(pilot, statement: str) -> None:
    with pilot.engine.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_an_edited_row(pilot):
    _history(pilot)
    _sql(pilot, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    result = views.audit_verify(pilot.engine)
    assert not result.ok and result.problems[0]["seq"] == 3


def test_an_edited_body(pilot):
    _history(pilot)
    _sql(pilot, "UPDATE audit_events SET body = replace(body, 'TEST-1', 'TEST-2') WHERE seq = 2")
    result = views.audit_verify(pilot.engine)
    assert not result.ok and result.problems[0]["seq"] == 2
    assert "changed after it was written" in result.problems[0]["message"]


def test_a_deleted_row(pilot):
    _history(pilot)
    _sql(pilot, "DELETE FROM audit_events WHERE seq = 4")
    result = views.audit_verify(pilot.engine)
    assert not result.ok and result.problems[0]["seq"] == 5
    assert "missing" in result.problems[0]["message"]


def test_swapped_rows(pilot):
    _history(pilot)
    _sql(pilot, "UPDATE audit_events SET seq = -1 WHERE seq = 3")
    _sql(pilot, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    _sql(pilot, "UPDATE audit_events SET seq = 4 WHERE seq = -1")
    result = views.audit_verify(pilot.engine)
    assert not result.ok and result.problems[0]["seq"] == 3


def test_a_truncated_tail(pilot):
    count = _history(pilot)
    kept = views.audit_checkpoint(pilot.engine)
    assert kept == Checkpoint(count, kept.hash)
    _sql(pilot, f"DELETE FROM audit_events WHERE seq > {count - 2}")
    result = views.audit_verify(pilot.engine)  # the head record disagrees
    assert not result.ok and "cut off" in result.problems[0]["message"]
    last = views.audit_events(pilot.engine, newest_first=True, limit=1)[0]
    _sql(pilot, f"UPDATE audit_head SET seq = {last.seq}, hash = '{last.hash}'")
    assert views.audit_verify(pilot.engine).ok  # a careful attacker fixes the head too...
    result = views.audit_verify(pilot.engine, [kept])  # ...but not the kept checkpoint
    assert not result.ok and result.problems[0]["kind"] == "truncated"


def test_writers_on_two_handles_and_a_rollback_keep_the_chain_whole(pilot, database_url):
    """A process remembers where it left the chain's head, to skip reading it.

    Another process (here a second handle on the same database) appending
    between its transactions, or one of its own transactions rolling back
    after writing its events, moves the head elsewhere: the next events must
    still chain onto the real head.
    """
    from datetime import UTC, datetime

    import pytest

    from interlock.storage.db import Database

    def append(db: Database, n: int) -> None:
        with db.transaction() as tx:
            tx.audit(at=datetime.now(UTC), actor="t", action="t.one", object_type="t", object_id=n)
            tx.audit(at=datetime.now(UTC), actor="t", action="t.two", object_type="t", object_id=n)

    other = Database(database_url)
    try:
        for n in range(6):
            append(pilot.engine.db if n % 2 == 0 else other, n)
        with pytest.raises(RuntimeError), pilot.engine.db.transaction() as tx:
            tx.audit(at=datetime.now(UTC), actor="t", action="t.gone", object_type="t", object_id=9)
            tx.flush_audit()  # written, remembered as the head, then rolled back
            raise RuntimeError("rolled back")
        for n in range(6, 30):
            append(pilot.engine.db, n)  # a process back to itself guesses again and hits
        append(other, 30)
        append(pilot.engine.db, 31)
    finally:
        other.dispose()
    result = views.audit_verify(pilot.engine)
    assert result.ok, result.problems
    actions = [e.action for e in views.audit_events(pilot.engine, actions=["t.one", "t.gone"])]
    assert actions == ["t.one"] * 32
