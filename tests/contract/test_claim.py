"""Claiming: every ready node is leased exactly once, however many workers ask at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from interlock.domain.states import NodeState
from interlock.storage.db import Database
from tests.contract.conftest import NOW, in_threads, seed_ready_nodes


def test_concurrent_workers_claim_each_ready_node_exactly_once(db: Database) -> None:
    ids = seed_ready_nodes(db, 24)

    def drain(worker: int) -> list[int]:
        taken: list[int] = []
        while True:
            claimed = db.run(lambda tx: tx.claim_node(f"w{worker}", NOW, 60.0))
            if claimed is None:
                return taken
            taken.append(claimed[0].id)

    taken = [node_id for per_worker in in_threads(4, drain) for node_id in per_worker]

    assert sorted(taken) == sorted(ids)  # none lost, none twice
    with db.read() as tx:
        claimed = [tx.require_node(i) for i in ids]
    assert {n.state for n in claimed} == {NodeState.RUNNING}
    assert {(n.attempt, n.fence) for n in claimed} == {(1, 1)}
    with db.read() as tx:
        assert len(tx.attempts_of(ids)) == len(ids)  # one attempt row per claim


# The rows of nodes this transaction holds a lock on without having changed them.
_LOCKED_BY_ME = text(
    "SELECT id FROM nodes WHERE xmax = pg_current_xact_id()::xid AND id <> :claimed"
)


def test_a_claim_locks_no_node_but_the_one_it_leases(db: Database) -> None:
    """PostgreSQL: a claim racing others for the same oldest nodes keeps no other row locked.

    ``FOR UPDATE SKIP LOCKED`` locked the new version of a node another claim had leased
    and committed since the statement's snapshot, skipped it, and held that lock to its
    own commit (the worker running that node then waited for it); ``interlock_claim``
    leases only after an advisory lock, under a snapshot taken after it.
    """
    if db.dialect != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer)")
    ids = seed_ready_nodes(db, 300)

    def drain(worker: int) -> tuple[list[int], list[int]]:
        taken: list[int] = []
        extra: list[int] = []
        while True:
            with db.transaction() as tx:
                claimed = tx.claim_node(f"w{worker}", NOW, 60.0)
                if claimed is None:
                    return taken, extra
                taken.append(claimed[0].id)
                rows = tx.conn.execute(_LOCKED_BY_ME, {"claimed": claimed[0].id})
                extra += [row[0] for row in rows]

    results = in_threads(6, drain)
    taken = [node_id for per_worker, _ in results for node_id in per_worker]
    assert sorted(taken) == sorted(ids)  # none lost, none twice
    assert [node_id for _, extra in results for node_id in extra] == []


def test_a_claim_in_flight_is_skipped_on_postgresql_and_waited_for_on_sqlite(
    db: Database,
) -> None:
    """PostgreSQL: SKIP LOCKED hands the next node at once. SQLite: one writer at a time."""
    first, second = seed_ready_nodes(db, 2)
    holding = threading.Event()
    release = threading.Event()
    held: list[int] = []

    def hold_a_claim() -> None:
        with db.transaction() as tx:
            claimed = tx.claim_node("slow", NOW, 60.0)
            assert claimed is not None
            held.append(claimed[0].id)
            holding.set()
            assert release.wait(timeout=60)

    holder = threading.Thread(target=hold_a_claim)
    holder.start()
    try:
        assert holding.wait(timeout=30)
        done = threading.Event()
        got: list[int] = []

        def claim_next() -> None:
            claimed = db.run(lambda tx: tx.claim_node("fast", NOW, 60.0))
            assert claimed is not None
            got.append(claimed[0].id)
            done.set()

        other = threading.Thread(target=claim_next)
        other.start()
        if db.dialect == "postgresql":
            assert done.wait(timeout=30), "the second claim waited on the first one's lock"
        else:
            assert not done.wait(timeout=0.3), "two write transactions ran at once on SQLite"
        release.set()
        other.join(timeout=60)
        assert got and got[0] != held[0]
        assert {got[0], held[0]} == {first, second}
    finally:
        release.set()
        holder.join(timeout=60)


def test_a_node_is_not_claimed_before_its_time(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    with db.transaction() as tx:
        node = tx.require_node(node_id)
        later = NOW + timedelta(minutes=5)
        assert tx.update_node(node, NodeState.READY, not_before=later)
    assert db.run(lambda tx: tx.claim_node("w", NOW, 60.0)) is None
    with db.read() as tx:
        assert tx.next_ready_at() == later
    claimed = db.run(lambda tx: tx.claim_node("w", later, 60.0))
    assert claimed is not None and claimed[0].id == node_id


def test_a_named_ready_node_is_leased_only_in_its_own_deployment_and_only_once(
    db: Database,
) -> None:
    """claim_ready: the worker keeping the node its step made ready (engine/worker.py)."""
    first, second = seed_ready_nodes(db, 2)
    with db.read() as tx:
        deployment_id = tx.require_node(first).deployment_id
    assert db.run(lambda tx: tx.claim_ready(first, deployment_id + 1, "w", NOW, 60.0)) is None
    node = db.run(lambda tx: tx.claim_ready(first, deployment_id, "w", NOW, 60.0))
    assert node is not None and (node.id, node.state, node.attempt) == (first, "running", 1)
    assert db.run(lambda tx: tx.claim_ready(first, deployment_id, "v", NOW, 60.0)) is None
    with db.read() as tx:
        assert [a.worker for a in tx.attempts_of([first, second])] == ["w"]  # one attempt row
        assert tx.require_node(second).state is NodeState.READY


def test_a_deployment_and_its_counts_by_phase_and_state_are_read_together(db: Database) -> None:
    """progress_of: what advance reads for every step (one statement on SQLite)."""
    ids = seed_ready_nodes(db, 3)
    with db.read() as tx:
        deployment_id = tx.require_node(ids[0]).deployment_id
    db.run(lambda tx: tx.claim_node("w", NOW, 60.0))
    progress = db.run(lambda tx: tx.progress_of(deployment_id))
    assert progress is not None
    deployment, counts = progress
    assert deployment.id == deployment_id
    assert counts == {("deploy", NodeState.READY): 2, ("deploy", NodeState.RUNNING): 1}
    with db.read() as tx:
        assert counts == tx.state_counts_by_phase(deployment_id)
    assert db.run(lambda tx: tx.progress_of(deployment_id + 1000)) is None


def test_steps_ending_on_the_same_count_row_do_not_wait_for_each_other(db: Database) -> None:
    """PostgreSQL: a step's end counts in ``metric_days`` at commit, not at the update.

    Steps whose ids share a shard count on one row; counted at the update (a plain
    trigger), the first transaction held that row to its commit and the second
    waited for it. The constraint trigger counts at commit, so the second goes on.
    """
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer")
    ids = seed_ready_nodes(db, 9)  # the first and the last share a shard (id % 8)
    for _ in ids:
        db.run(lambda tx: tx.claim_node("w", NOW, 60.0))
    ends = NOW + timedelta(seconds=1)
    holding = threading.Event()
    release = threading.Event()

    def end(node_id: int) -> None:
        with db.transaction() as tx:
            node = tx.require_node(node_id)
            assert tx.update_node(
                node, NodeState.RUNNING, state=NodeState.SUCCEEDED, finished_at=ends
            )
            holding.set()
            assert release.wait(timeout=60)

    first = threading.Thread(target=end, args=(ids[0],))
    first.start()
    try:
        assert holding.wait(timeout=30)
        done = threading.Event()

        def second() -> None:
            with db.transaction() as tx:
                node = tx.require_node(ids[8])
                assert tx.update_node(
                    node, NodeState.RUNNING, state=NodeState.SUCCEEDED, finished_at=ends
                )
            done.set()

        other = threading.Thread(target=second)
        other.start()
        assert done.wait(timeout=5), "the second step's end waited for the first's commit"
    finally:
        release.set()
        first.join(timeout=60)
    other.join(timeout=60)
    with db.read() as tx:
        counted = tx.conn.execute(
            text("SELECT sum(events) FROM metric_days WHERE family = 'step_runs'")
        ).scalar()
    assert counted == 2  # both counted, at their commits
