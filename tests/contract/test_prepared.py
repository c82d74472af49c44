"""The statements every step runs, compiled once and sent through the driver's cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from interlock.storage.base import Prepared, run_together
from interlock.storage.db import Database
from interlock.storage.schema import attempts, releases
from tests.contract.conftest import NOW, seed_ready_nodes, seed_release


@pytest.fixture
def sent(db: Database) -> Iterator[list[str]]:
    """The statements this database handle sends, as its listeners see them."""
    statements: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", listen)
    yield statements
    event.remove(db.engine, "before_cursor_execute", listen)


def test_a_claim_reads_back_typed_values_and_listeners_see_its_statements(
    db: Database, sent: list[str]
) -> None:
    [node_id] = seed_ready_nodes(db, 1)
    sent.clear()
    with db.transaction() as tx:
        claimed = tx.claim_node("w1", NOW, 30)
    assert claimed is not None
    node, deployment = claimed
    assert node.id == node_id and node.attempt == 1 and node.fence == 1
    assert node.started_at == NOW and node.lease_expires is not None
    assert node.lease_expires.timestamp() == NOW.timestamp() + 30
    assert node.spec == {} and node.needs == () and node.cancel_requested is False
    assert deployment.environment == "staging" and deployment.created_at == NOW
    # (On PostgreSQL the search and the lease are one call of interlock_claim.)
    if db.dialect == "postgresql":
        lease = [s for s in sent if "FROM interlock_claim(" in s]
        assert len(lease) == 1
    else:
        lease = [s for s in sent if "UPDATE nodes SET state=" in s]
        assert len(lease) == 1 and "RETURNING" in lease[0]
    assert any(s.startswith("INSERT INTO attempts") for s in sent)


def test_a_driver_error_comes_out_as_sqlalchemys_so_it_is_retried_as_before(
    db: Database,
) -> None:
    [node_id] = seed_ready_nodes(db, 1)
    with db.transaction() as tx:
        tx.claim_node("w1", NOW, 30)
    twice = Prepared(
        attempts.insert().values(
            node_id=bindparam("n"), attempt=1, worker="w2", started_at=NOW.timestamp()
        )
    )
    with pytest.raises(IntegrityError) as raised, db.transaction() as tx:
        twice.run(tx.conn, {"n": node_id})  # attempt 1 of this node exists
    assert isinstance(raised.value, DBAPIError)
    assert "attempts" in str(raised.value)


def test_one_commit_moves_each_release_it_touched_once(db: Database, sent: list[str]) -> None:
    with db.transaction() as tx:
        ids = [seed_release(tx) for _ in range(3)]
    with db.read() as tx:
        before = tx.release_revisions(ids)
    sent.clear()
    with db.transaction() as tx:
        tx.touch_release(ids[0], NOW)
        tx.touch_release(ids[2], NOW)
        tx.touch_release(ids[0], NOW)
    with db.read() as tx:
        after = tx.release_revisions(ids)
        rows = tx.conn.execute(select(releases.c.id, releases.c.updated_at))
        stamps = {r.id: r.updated_at for r in rows}
    assert [after[i] - before[i] for i in ids] == [1, 0, 1]
    assert stamps[ids[0]] == stamps[ids[2]] != stamps[ids[1]]
    moved = [s for s in sent if s.startswith("UPDATE releases")]
    # SQLite has one writer: one statement for both. PostgreSQL locks the rows one by
    # one in id order (two writers touching the same releases never deadlock).
    assert len(moved) == (1 if db.dialect == "sqlite" else 2)


def test_a_prepared_update_counts_its_rows(db: Database) -> None:
    with db.transaction() as tx:
        ids = [seed_release(tx) for _ in range(2)]
    rename = Prepared(
        update(releases).where(releases.c.id == bindparam("w_id")).values(reason=bindparam("r"))
    )
    with db.transaction() as tx:
        assert rename.run(tx.conn, {"w_id": ids[1], "r": "renamed"}).rowcount == 1
        assert rename.run(tx.conn, {"w_id": 10_000, "r": "nobody"}).rowcount == 0
    with db.read() as tx:
        assert tx.require_release(ids[1]).reason == "renamed"


def test_statements_run_together_answer_as_one_by_one_and_fail_as_sqlalchemys(
    db: Database, sent: list[str]
) -> None:
    """``run_together``: one round trip on PostgreSQL (psycopg's pipeline mode), the
    statements in order (a write is seen by the reads after it), each one's rows and
    row count as :meth:`Prepared.run` gives them; a driver error comes out as
    SQLAlchemy's, so ``Database.run`` retries it as before, and nothing of it stays."""
    [node_id] = seed_ready_nodes(db, 1)
    with db.transaction() as tx:
        ids = [seed_release(tx) for _ in range(2)]
    rename = Prepared(
        update(releases).where(releases.c.id == bindparam("w_id")).values(reason=bindparam("r"))
    )
    reason = Prepared(select(releases.c.reason).where(releases.c.id == bindparam("id")))
    sent.clear()
    with db.transaction() as tx:
        renamed, nobody, first, second = run_together(
            tx.conn,
            [
                (rename, {"w_id": ids[0], "r": "together"}),
                (rename, {"w_id": 10_000, "r": "nobody"}),
                (reason, {"id": ids[0]}),
                (reason, {"id": ids[1]}),
            ],
        )
    assert (renamed.rowcount, nobody.rowcount) == (1, 0)
    assert (first.rows, second.rows) == ([("together",)], [("CONTRACT-1: storage",)])
    assert len([s for s in sent if not s.startswith("BEGIN")]) == 4  # as listeners see them
    twice = Prepared(
        attempts.insert().values(
            node_id=bindparam("n"), attempt=1, worker="w2", started_at=NOW.timestamp()
        )
    )
    with db.transaction() as tx:
        tx.claim_node("w1", NOW, 30)
    with pytest.raises(IntegrityError), db.transaction() as tx:
        run_together(tx.conn, [(rename, {"w_id": ids[1], "r": "lost"}), (twice, {"n": node_id})])
    with db.read() as tx:
        assert tx.require_release(ids[1]).reason == "CONTRACT-1: storage"


def test_a_warmed_database_has_every_prepared_statement_compiled_before_it_runs(
    db: Database,
) -> None:
    """What a worker pool does as it starts, so its first steps compile nothing."""
    fresh = Prepared(select(releases.c.id).where(releases.c.id == bindparam("id")))
    assert fresh._compiled == {}
    db.warm()
    assert list(fresh._compiled) == [db.engine.dialect.name]
    compiled = fresh._compiled[db.engine.dialect.name]
    with db.read() as tx:
        assert fresh.run(tx.conn, {"id": -1}).rows == []
    assert fresh._compiled[db.engine.dialect.name] is compiled  # (not compiled again)


def test_a_json_column_is_read_by_the_engines_own_decoder_in_one_call(db: Database) -> None:
    """On SQLite, a prepared statement reads a JSON column with load_json itself (not
    through SQLAlchemy's two wrappers around it): the same values, fewer calls a step."""
    from interlock.storage.schema import deployments
    from interlock.storage.types import load_json

    with db.transaction() as tx:
        release_id = seed_release(tx)
        tx.conn.execute(
            deployments.insert().values(
                release_id=release_id,
                kind="deploy",
                environment="staging",
                env_index=0,
                state="running",
                created_by="ann",
                created_at=NOW,
                previous={"api": {"version": "1.0"}},
                settings=None,
                params={"n": 5},
            )
        )
    reading = Prepared(select(deployments.c.previous, deployments.c.settings, deployments.c.params))
    with db.read() as tx:
        result = reading.run(tx.conn, {})
    assert [list(row) for row in result.rows] == [[{"api": {"version": "1.0"}}, None, {"n": 5}]]
    processors = reading._compiled[db.engine.dialect.name].results
    assert processors is not None
    if db.dialect == "sqlite":
        assert [p for _, p in processors] == [load_json, load_json, load_json]
