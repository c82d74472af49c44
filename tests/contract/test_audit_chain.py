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
