"""What runs just before commit, in order: revisions, delivery facts, audit chain, wake-ups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from interlock.domain.states import DeploymentState
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
