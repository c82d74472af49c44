"""The audit chain: appends from two writers at once stay one unbroken chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interlock.audit.chain import verify, verify_rows
from interlock.storage.db import Database
from tests.contract.conftest import NOW, in_threads

PER_WRITER = 15


@pytest.fixture
def two_processes(db: Database, database_url: str) -> Iterator[tuple[Database, Database]]:
    """Two handles on one database, each with its own remembered chain head (two processes)."""
    other = Database(database_url)
    yield db, other
    other.dispose()


def test_two_writers_append_one_unbroken_chain(two_processes: tuple[Database, Database]) -> None:
    def write(writer: int) -> None:
        database = two_processes[writer]
        for n in range(PER_WRITER):
            with database.transaction() as tx:
                for part in ("a", "b"):  # two events in one transaction stay adjacent
                    tx.audit(
                        at=NOW,
                        actor=f"writer-{writer}",
                        action="contract.appended",
                        object_type="contract",
                        object_id=f"{writer}-{n}",
                        data={"part": part},
                    )

    in_threads(2, write)

    with two_processes[0].read() as tx:
        head = tx.audit_head()
        result = verify(tx.stored_events(), head=head)
        events = tx.list_audit(limit=1000)
    assert result.ok, result
    assert head is not None and head.seq == 2 * 2 * PER_WRITER
    assert [e.seq for e in events] == list(range(1, 2 * 2 * PER_WRITER + 1))
    pairs = [(events[i].object_id, events[i + 1].object_id) for i in range(0, len(events), 2)]
    assert all(first == second for first, second in pairs)


def test_an_event_of_a_rolled_back_transaction_leaves_no_trace(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.audit(at=NOW, actor="ann", action="contract.kept", object_type="c", object_id=1)
        raise RuntimeError("changed my mind")
    with db.transaction() as tx:
        tx.audit(at=NOW, actor="ann", action="contract.kept", object_type="c", object_id=2)
    with db.read() as tx:
        events = tx.list_audit()
        assert [(e.seq, e.object_id) for e in events] == [(1, "2")]
        assert verify(tx.stored_events(), head=tx.audit_head()).ok


def test_the_rows_verify_streams_are_the_stored_events(db: Database) -> None:
    """`audit verify` reads plain rows in batches: the same events, in order, ``at`` as stored."""
    for n in range(7):
        with db.transaction() as tx:
            tx.audit(at=NOW, actor="ann", action="contract.kept", object_type="c", object_id=n)
    with db.read() as tx:
        events = list(tx.stored_events())
        rows = list(tx.stored_event_rows(batch=3))
        after = list(tx.stored_event_rows(batch=2, after=4))
        result = verify_rows(tx.stored_event_rows(batch=3), head=tx.audit_head())
    assert [
        (e.seq, e.at, e.actor, e.action, e.object_type, e.object_id, e.body, e.prev_hash, e.hash)
        for e in events
    ] == [tuple(r) for r in rows]
    assert [r[0] for r in after] == [5, 6, 7]
    assert result.ok and result.count == 7 and result.head is not None
    assert result.head.hash == events[-1].hash


@pytest.mark.parametrize("seq", [1, 9, 10, 12345, 2**40])
def test_a_body_cut_around_its_number_is_the_body_of_that_number(seq: int) -> None:
    """PostgreSQL numbers (and hashes) events in SQL: ``head + str(seq) + tail``."""
    from interlock.audit.chain import event_body
    from interlock.storage.audit import cut_body

    event = {
        "at": NOW,
        "actor": "ann",
        "action": "contract.cut",
        "object_type": "c",
        "object_id": "1",
        "reason": 'a "seq":0,"ts": in a reason',
        "before": {"seq": 0, "ts": 1.5},  # the same keys, nested, before the real ones
        "after": None,
        "data": {"x": {"seq": 0, "ts": 2}, "é": "ü"},
    }
    head, tail = cut_body(event)
    assert head + str(seq) + tail == event_body(seq=seq, **event)


def test_events_with_any_text_chain_as_verify_recomputes_them(db: Database) -> None:
    """Non-ASCII text, newlines, quotes: the hash the database computes (PostgreSQL) is
    the one `audit verify` computes."""
    with db.transaction() as tx:
        for n, value in enumerate(("naïve ☃", 'a\n"b"\\c', "\U0001f680", "")):
            tx.audit(
                at=NOW,
                actor="ann",
                action="contract.kept",
                object_type="c",
                object_id=n,
                reason=value or None,
                data={"value": value},
            )
    with db.read() as tx:
        result = verify(tx.stored_events(), head=tx.audit_head())
    assert result.ok, result
    assert result.count == 4


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_appends_to_the_chain_in_one_statement(db: Database) -> None:
    """The head's row lock, which every writer waits for, is held for one statement and
    the commit: locked, events chained and inserted, head moved, in one round trip."""
    from sqlalchemy import event

    with db.transaction() as tx:  # the chain's head exists
        tx.audit(at=NOW, actor="ann", action="contract.kept", object_type="c", object_id=0)
    sent: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        if "audit_" in statement:
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        other = Database(db.url)  # another process: it never saw the head
        try:
            with other.transaction() as tx:
                for n in (1, 2):
                    tx.audit(
                        at=NOW, actor="bob", action="contract.kept", object_type="c", object_id=n
                    )
            for n in (3, 4):
                with db.transaction() as tx:
                    tx.audit(
                        at=NOW, actor="ann", action="contract.kept", object_type="c", object_id=n
                    )
        finally:
            other.dispose()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert len(sent) == 2  # this handle's two commits (the other's listener is its own)
    with db.read() as tx:
        result = verify(tx.stored_events(), head=tx.audit_head())
    assert result.ok and result.count == 5
