"""Lease recovery: what happens to a node whose worker stopped holding it.

An idempotent step (or a gate, which only looks) is run again. Any other step
goes to ``needs_attention`` for a person to decide, because running it twice
could do harm: Interlock never silently runs a non-idempotent step again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.domain.records import Node
from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.progress import advance
from interlock.engine.transitions import move_node


def recover(
    engine: Engine,
    *,
    everything: bool = False,
    only: Sequence[int] | None = None,
    reason: str = "the worker running it stopped (its lease expired)",
    unstarted: bool = False,
) -> list[tuple[str, str]]:
    """Recover expired leases (or all running nodes, or the ``only`` ones).

    ``everything`` is for a SQLite server starting up: it holds the database's
    lock, so no other process can be running anything. Returns
    ``(node key, new state)`` pairs.
    """
    now = engine.clock.now()

    def work(tx: Any) -> list[tuple[str, str]]:
        if only is not None:
            nodes = [n for n in (tx.get_node(i) for i in only) if n is not None]
            nodes = [n for n in nodes if n.state is NodeState.RUNNING]
        elif everything:
            nodes = tx.expired_leases(now.replace(year=9999))
        else:
            nodes = tx.expired_leases(now)
        done = []
        for node in nodes:
            done.append((node.key, _recover_one(tx, engine, node, reason, unstarted).value))
        return done

    # Bounded batches, so one transaction never holds the queue for long; go on
    # until a batch comes back short.
    found: list[tuple[str, str]] = []
    while True:
        batch = engine.db.run(work)
        found.extend(batch)
        if only is not None or len(batch) < 100:
            return found


def _recover_one(tx: Any, engine: Engine, node: Node, reason: str, unstarted: bool) -> NodeState:
    now = engine.clock.now()
    tx.finish_attempt(
        node.id, node.attempt, at=now, outcome="released" if unstarted else "lost", error=reason
    )
    cleared: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
    data = {"worker": node.lease_owner, "idempotent": node.idempotent}
    limit = node.max_attempts + engine.settings.lost_lease_retries
    if node.cancel_requested:
        target = NodeState.CANCELLED
        move_node(
            tx, node, target, at=now, actor=SYSTEM_ACTOR, reason=reason, finished_at=now, **cleared
        )
    elif unstarted or ((node.idempotent or node.kind == "gate") and node.attempt < limit):
        target = NodeState.READY
        move_node(
            tx,
            node,
            target,
            at=now,
            actor=SYSTEM_ACTOR,
            action=f"{node.kind}.recovered",
            reason=reason,
            data=data,
            not_before=now,
            **cleared,
        )
        tx.notify("work")
    else:
        target = NodeState.NEEDS_ATTENTION
        if node.idempotent:
            why = f"{reason}; it was started {node.attempt} times, the limit is {limit}"
        else:
            why = (
                f"{reason}; it is not idempotent, so it is not run again without a person "
                "deciding: retry, skip, fail or roll back"
            )
        move_node(
            tx,
            node,
            target,
            at=now,
            actor=SYSTEM_ACTOR,
            reason=why,
            data=data,
            error=why,
            **cleared,
        )
    advance(tx, node.deployment_id, at=now)
    return target
