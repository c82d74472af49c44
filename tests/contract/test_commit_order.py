"""What runs just before commit, in order: revisions, delivery facts, audit chain, wake-ups."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from interlock.domain.states import DeploymentState, NodeState
from interlock.storage.db import Database
from tests.contract.conftest import NOW, seed_ready_nodes


def test_before_commit_writes_revisions_then_facts_then_the_audit_chain_last(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.transaction() as tx:
            tx.audit(at=NOW, actor="ann", action="contract.finished", object_type="c", object_id=1)
            deployment = tx.require_deployment(tx.require_node(node_id).deployment_id)
            assert deployment.release_id is not None
            assert tx.update_deployment(
                deployment.id,
                DeploymentState.RUNNING,
                state=DeploymentState.SUCCEEDED,
                finished_at=NOW,
            )
            tx.touch_release(deployment.release_id, NOW)
            tx.notify("work")
            work_done = len(seen)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)

    def first(*fragments: str) -> int:
        return next(
            i for i, s in enumerate(seen) if i >= work_done and all(f in s for f in fragments)
        )

    revision = first("update releases", "revision")
    facts = first("delivery_facts")
    head = first("update audit_head")
    chain = first("insert into audit_events")
    assert revision < facts < head <= chain, seen[work_done:]
    # The head's row lock, which every writer takes, is held for the last statements only:
    # on PostgreSQL one (the head locked, the events chained and inserted, the head
    # moved), on SQLite (one writer at a time anyway) the head's update and the insert.
    last = 1 if db.dialect == "postgresql" else 2
    assert len(seen) == chain + 1 == head + last, seen[head:]
    if db.dialect == "postgresql":
        assert facts < first("pg_notify") < head
    with db.read() as tx:
        assert [e.action for e in tx.list_audit()] == ["contract.finished"]


def test_on_postgresql_the_commit_goes_out_with_the_audit_chain_in_one_round_trip(
    db: Database,
) -> None:
    """Nothing after the audit chain's statement waits for the client: its head's row
    lock, which every writer takes, is held for that statement and the commit alone."""
    (node_id,) = seed_ready_nodes(db, 1)
    at_commit: list[Any] = []

    def committing(conn: Any) -> None:  # SQLAlchemy's commit, as it begins
        raw = conn.connection.dbapi_connection
        at_commit.append(raw.info.transaction_status if db.dialect == "postgresql" else None)

    event.listen(db.engine, "commit", committing)
    try:
        with db.transaction() as tx:
            deployment = tx.require_deployment(tx.require_node(node_id).deployment_id)
            assert deployment.release_id is not None
            tx.touch_release(deployment.release_id, NOW)
            tx.audit(at=NOW, actor="ann", action="contract.sent", object_type="c", object_id=1)
    finally:
        event.remove(db.engine, "commit", committing)
    if db.dialect == "postgresql":
        import psycopg

        assert at_commit == [psycopg.pq.TransactionStatus.IDLE]  # committed already
    else:
        assert at_commit == [None]  # (SQLite: one writer, the commit is SQLAlchemy's)
    with db.read() as tx:
        assert [e.action for e in tx.list_audit()] == ["contract.sent"]


def test_a_change_whose_audit_events_cannot_be_chained_does_not_commit(db: Database) -> None:
    """With no head to chain onto, the change fails with its events (never commits
    without them), on both backends."""
    (node_id,) = seed_ready_nodes(db, 1)
    with db.transaction() as tx:
        tx.audit(at=NOW, actor="ann", action="contract.first", object_type="c", object_id=1)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    with pytest.raises(DBAPIError), db.transaction() as tx:
        assert tx.update_node(tx.require_node(node_id), NodeState.READY, state=NodeState.SKIPPED)
        tx.audit(at=NOW, actor="ann", action="contract.lost", object_type="c", object_id=1)
    with db.read() as tx:
        assert tx.require_node(node_id).state is NodeState.READY
        assert [e.action for e in tx.list_audit()] == ["contract.first"]
