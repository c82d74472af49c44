"""A worker going on with its pipeline leases the next node as that node stops waiting.

With ``lease_ahead`` set (on SQLite: one writer), counting a finished node off
its one dependent also leases that dependent, when it has nothing left to wait
for and its deployment goes on (running, no cancel or abort asked, no node
failed or waiting for a person): one statement where a ready node and its
claim took two, and the node never enters the ready index. Otherwise it
becomes ready as ever, for whoever claims it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from interlock.domain.plan import NodePlan
from interlock.domain.records import Node
from interlock.domain.states import DeploymentState, NodeState
from interlock.storage.db import Database
from interlock.storage.tx import Tx
from tests.contract.conftest import NOW, seed_running_deployment


def _pipeline(tx: Tx) -> tuple[int, Node, Node, Node]:
    """A running deployment: api/a (done), api/b (needs a), and api/c (ready, unrelated)."""
    deployment_id = seed_running_deployment(tx)
    plans = [
        NodePlan(key="api/a", kind="step", name="a", executor="shell", spec={}),
        NodePlan(key="api/b", kind="step", name="b", executor="shell", spec={}, needs=("api/a",)),
        NodePlan(key="api/c", kind="step", name="c", executor="shell", spec={}),
    ]
    tx.insert_nodes(deployment_id, plans, NOW)
    a, b, c = tx.nodes_of(deployment_id)
    return deployment_id, a, b, c


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_dependent_is_leased_in_the_statement_that_frees_it(db: Database) -> None:
    with db.transaction() as tx:
        _, a, b, _ = _pipeline(tx)
        tx.lease_ahead = ("w1", 30.0)
        assert tx.satisfy(a, NOW) == []  # leased, not made ready: no one to wake
        assert tx.lease_ahead is None  # used once
        assert tx.leased_ahead is not None
        leased, at = tx.leased_ahead
        assert at == NOW and leased.id == b.id
        tx.start_attempt(leased, "w1", at)
    with db.read() as tx:
        stored = tx.require_node(b.id)
        [attempt] = tx.attempts_of([b.id])
    assert (stored.state, stored.unmet, stored.attempt, stored.fence) == (
        NodeState.RUNNING,
        0,
        1,
        1,
    )
    assert stored.lease_owner == "w1" and stored.started_at == NOW == stored.not_before
    assert stored.lease_expires == NOW + timedelta(seconds=30)
    assert (attempt.attempt, attempt.worker, attempt.started_at) == (1, "w1", NOW)
    assert leased == stored


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "stopped", ["cancel", "abort", "failed node", "node needs a person", "paused"]
)
def test_a_deployment_that_may_not_go_on_gets_a_ready_node(db: Database, stopped: str) -> None:
    with db.transaction() as tx:
        deployment_id, a, b, c = _pipeline(tx)
        running = DeploymentState.RUNNING
        if stopped == "cancel":
            tx.update_deployment(deployment_id, running, cancel_requested=True)
        elif stopped == "abort":
            tx.update_deployment(deployment_id, running, abort_reason="deadline")
        elif stopped == "paused":
            tx.update_deployment(deployment_id, running, state=DeploymentState.NEEDS_ATTENTION)
        else:
            target = NodeState.FAILED if stopped == "failed node" else NodeState.NEEDS_ATTENTION
            assert tx.update_node(c, NodeState.PENDING, state=target)
        tx.lease_ahead = ("w1", 30.0)
        assert tx.satisfy(a, NOW) == [b.id]
        assert tx.leased_ahead is None
    with db.read() as tx:
        stored = tx.require_node(b.id)
        assert tx.attempts_of([b.id]) == []
    assert (stored.state, stored.unmet, stored.attempt, stored.fence) == (NodeState.READY, 0, 0, 0)
    assert stored.lease_owner is None and stored.not_before == NOW


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_dependent_still_waiting_for_another_need_is_only_counted_off(db: Database) -> None:
    with db.transaction() as tx:
        deployment_id = seed_running_deployment(tx)
        plans = [
            NodePlan(key="api/a", kind="step", name="a", executor="shell", spec={}),
            NodePlan(key="api/x", kind="step", name="x", executor="shell", spec={}),
            NodePlan(
                key="api/b",
                kind="step",
                name="b",
                executor="shell",
                spec={},
                needs=("api/a", "api/x"),
            ),
        ]
        tx.insert_nodes(deployment_id, plans, NOW)
        a, _, b = tx.nodes_of(deployment_id)
        tx.lease_ahead = ("w1", 30.0)
        assert tx.satisfy(a, NOW) == []
        assert tx.leased_ahead is None
    with db.read() as tx:
        stored = tx.require_node(b.id)
    assert (stored.state, stored.unmet, stored.attempt) == (NodeState.PENDING, 1, 0)
