"""Lease recovery: what happens to a node whose worker stopped holding it.

An idempotent step (or a gate, which only looks) is run again. Any other step
goes to ``needs_attention`` for a person to decide, because running it twice
could do harm: Interlock never silently runs a non-idempotent step again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from interlock.domain.records import Node
from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.progress import advance
from interlock.engine.transitions import move_node
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)


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

    def pick(tx: Tx) -> list[int]:
        if only is not None:
            found = [tx.get_node(i) for i in only]
            return [n.id for n in found if n is not None and n.state is NodeState.RUNNING]
        horizon = now.replace(year=9999) if everything else now
        return [n.id for n in tx.expired_leases(horizon)]

    done: list[tuple[str, str]] = []
    failed: set[int] = set()
    while True:
        with engine.db.read() as tx:
            batch = [i for i in pick(tx) if i not in failed]
        for node_id in batch:
            # One transaction per node: a node that cannot be recovered (a bug, an
            # illegal transition) is logged and skipped; it never blocks the others.
            try:
                outcome = engine.db.run(
                    partial(
                        _recover_id,
                        engine=engine,
                        node_id=node_id,
                        reason=reason,
                        unstarted=unstarted,
                    )
                )
            except Exception:
                log.exception("could not recover node %s; leaving it for a person", node_id)
                failed.add(node_id)
                continue
            if outcome is not None:
                done.append(outcome)
        if only is not None or len(batch) < 100:
            return done


def _recover_id(
    tx: Tx, *, engine: Engine, node_id: int, reason: str, unstarted: bool
) -> tuple[str, str] | None:
    node = tx.get_node(node_id, lock=True)
    if node is None or node.state is not NodeState.RUNNING:
        return None  # finished or recovered meanwhile
    return node.key, _recover_one(tx, engine, node, reason, unstarted).value


def _recover_one(tx: Tx, engine: Engine, node: Node, reason: str, unstarted: bool) -> NodeState:
    now = engine.clock.now()
    tx.finish_attempt(
        node.id, node.attempt, at=now, outcome="released" if unstarted else "lost", error=reason
    )
    cleared: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
    data = {"worker": node.lease_owner, "idempotent": node.idempotent}
    limit = node.max_attempts + engine.settings.lost_lease_retries
    if node.kind == "gate":
        limit = 10**9  # a gate only looks; every poll counts an attempt: always look again
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
