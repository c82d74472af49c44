"""The deployment graph: which nodes may run next, within a train's parallel limit.

The lowest layer above transitions: it moves nodes only, never a deployment,
and calls nothing above it (see docs/architecture.md, "Layers of the engine").
"""

from __future__ import annotations

from datetime import datetime

from interlock.domain.records import Deployment, Node
from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR
from interlock.engine.transitions import move_node
from interlock.storage.tx import Tx


def promote(tx: Tx, deployment: Deployment, *, at: datetime) -> None:
    """Make ready every pending node with no open needs, within the train's parallel limit.

    A train with no more services than the limit takes one UPDATE; a larger
    one decides in Python which services may start, oldest first.
    """
    if not deployment.rules.limits_parallel:
        tx.made_ready(tx.ready_roots(deployment.id, at))
        return
    limit = deployment.rules.parallel
    nodes = tx.nodes_of(deployment.id)
    done_states = {NodeState.SUCCEEDED, NodeState.SKIPPED}
    by_service: dict[str, list[Node]] = {}
    for node in nodes:
        if node.service is not None and node.phase == "deploy":
            by_service.setdefault(node.service, []).append(node)
    active = {
        service
        for service, mine in by_service.items()
        if any(n.state is not NodeState.PENDING for n in mine)
        and not all(n.state in done_states for n in mine)
    }
    for node in nodes:
        if node.state is not NodeState.PENDING or node.unmet > 0:
            continue
        service = node.service if node.phase == "deploy" else None
        if service is not None and service not in active:
            if len(active) >= limit:
                continue
            active.add(service)
        if move_node(
            tx, node, NodeState.READY, at=at, actor=SYSTEM_ACTOR, audit=False, not_before=at
        ):
            tx.made_ready([node.id])


def free_dependents(tx: Tx, node: Node, deployment: Deployment, *, at: datetime) -> None:
    """``node`` is done: count it off its dependents' needs and make ready who may run."""
    if not deployment.rules.limits_parallel:
        tx.made_ready(tx.satisfy(node, at))
    else:
        tx.count_off(node)
        promote(tx, deployment, at=at)


def wake_parent(tx: Tx, run_: Deployment, *, at: datetime) -> None:
    """A run started by a pipeline step ended: let that step look again."""
    if run_.parent_node_id is None:
        return
    parent = tx.get_node(run_.parent_node_id, lock=True)
    if parent is not None and parent.state is NodeState.WAITING:
        tx.update_node(parent, NodeState.WAITING, state=NodeState.READY, not_before=at)
        tx.notify("work")
