"""Lease fencing: a worker whose lease was taken over can change nothing any more."""

from __future__ import annotations

from datetime import timedelta

from interlock.domain.states import NodeState
from interlock.storage.db import Database
from tests.contract.conftest import NOW, seed_ready_nodes

LEASE = 30.0


def test_a_fenced_off_worker_can_neither_finish_nor_extend_its_lease(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    stale = db.run(lambda tx: tx.claim_node("old", NOW, LEASE))
    assert stale is not None
    old, _ = stale

    expired_at = NOW + timedelta(seconds=LEASE + 1)
    with db.transaction() as tx:
        assert [n.id for n in tx.expired_leases(expired_at)] == [node_id]
        recovered = tx.require_node(node_id, lock=True)
        assert tx.update_node(recovered, NodeState.RUNNING, state=NodeState.READY)
        fresh = tx.claim_node("new", expired_at, LEASE)
    assert fresh is not None
    new, _ = fresh
    assert (old.fence, new.fence) == (1, 2) and new.attempt == 2

    later = expired_at + timedelta(seconds=1)
    with db.transaction() as tx:
        lost, _ = tx.extend_leases([(node_id, old.fence)], later + timedelta(seconds=LEASE))
        assert lost == {node_id}
        assert not tx.update_node(old, NodeState.RUNNING, state=NodeState.SUCCEEDED)
        assert tx.require_node(node_id).lease_owner == "new"

    with db.transaction() as tx:
        lost, _ = tx.extend_leases([(node_id, new.fence)], later + timedelta(seconds=LEASE))
        assert lost == set()
        assert tx.update_node(new, NodeState.RUNNING, state=NodeState.SUCCEEDED)
    with db.read() as tx:
        assert tx.require_node(node_id).state is NodeState.SUCCEEDED


def test_only_leases_past_their_expiry_are_recovered(db: Database) -> None:
    ids = seed_ready_nodes(db, 2)
    db.run(lambda tx: tx.claim_node("a", NOW, 10.0))
    db.run(lambda tx: tx.claim_node("b", NOW, 100.0))
    with db.read() as tx:
        assert tx.expired_leases(NOW + timedelta(seconds=5)) == []
        assert [n.id for n in tx.expired_leases(NOW + timedelta(seconds=50))] == ids[:1]
        assert {n.lease_owner for n in tx.leases_held_by("")} == {"a", "b"}


def test_a_cancellation_is_reported_to_the_lease_holder(db: Database) -> None:
    (node_id,) = seed_ready_nodes(db, 1)
    claimed = db.run(lambda tx: tx.claim_node("w", NOW, LEASE))
    assert claimed is not None
    node, deployment = claimed
    with db.transaction() as tx:
        tx.request_cancel(deployment.id)
    with db.transaction() as tx:
        lost, cancel = tx.extend_leases([(node_id, node.fence)], NOW + timedelta(seconds=LEASE))
    assert (lost, cancel) == (set(), {node_id})
