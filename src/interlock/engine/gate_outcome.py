"""A gate's verdict applied: the gate passes, fails or waits, and its deployment advances.

Below the commands that decide a gate by hand (approvals, runbook sign-offs)
and the worker's steps: each of them calls :func:`apply_gate_decision`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.domain.records import Deployment, Node
from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.progress import advance, node_done
from interlock.engine.transitions import move_node
from interlock.gates import Decision
from interlock.storage.tx import Tx


def apply_gate_decision(
    tx: Tx,
    engine: Engine,
    node: Node,
    verdict: Decision,
    now: datetime,
    actor: str = SYSTEM_ACTOR,
    deployment: Deployment | None = None,
) -> None:
    """Move a gate (running, or waiting for an event) as its verdict says, and advance.

    ``deployment``: the gate's, when the caller read it in ``tx`` (saves two reads).
    """
    common: dict[str, Any] = {
        "lease_owner": None,
        "lease_expires": None,
        "result": verdict.detail or None,
    }
    first_look = node.attempt <= 1 and node.state is NodeState.RUNNING
    if verdict.outcome == "pass":
        if move_node(
            tx,
            node,
            NodeState.SUCCEEDED,
            at=now,
            actor=actor,
            reason=verdict.reason,
            finished_at=now,
            error=None,
            data=verdict.detail,
            **common,
        ):
            node_done(tx, node, at=now, deployment=deployment)
    elif verdict.outcome == "fail":
        move_node(
            tx,
            node,
            NodeState.FAILED,
            at=now,
            actor=actor,
            reason=verdict.reason,
            finished_at=now,
            error=verdict.reason,
            data=verdict.detail,
            **common,
        )
    elif verdict.until is not None:
        move_node(
            tx,
            node,
            NodeState.READY,
            at=now,
            actor=actor,
            audit=first_look,
            action="gate.waiting",
            reason=verdict.reason,
            not_before=verdict.until,
            error=verdict.reason,
            data={"until": verdict.until.isoformat()},
            **common,
        )
        tx.notify("work")
    elif node.state is NodeState.WAITING:
        tx.update_node(node, NodeState.WAITING, error=verdict.reason, result=verdict.detail)
    else:
        move_node(
            tx,
            node,
            NodeState.WAITING,
            at=now,
            actor=actor,
            audit=first_look,
            action="gate.waiting",
            reason=verdict.reason,
            error=verdict.reason,
            **common,
        )
    if deployment is None:
        deployment = tx.require_deployment(node.deployment_id)
    release_id = deployment.release_id
    if release_id is not None:
        tx.touch_release(release_id, now)
    advance(tx, node.deployment_id, at=now)
