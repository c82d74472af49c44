"""A person decides about a step that needs attention: retry, skip, fail or roll back.

A step lands in ``needs_attention`` when its worker died and it is not
idempotent (it may or may not have run), or when it failed in an environment
with ``on_failure: pause``. The decision is audited with its reason.
"""

from __future__ import annotations

import dataclasses
from typing import Unpack

from interlock.domain.records import Node
from interlock.domain.states import NodeState
from interlock.engine.access import Access
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.progress import advance, node_done
from interlock.engine.run_visibility import may_read_run
from interlock.engine.transitions import move_node
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.storage.changes import NodeChanges
from interlock.storage.tx import Tx

ACTIONS = ("retry", "skip", "fail", "rollback")


def resolve(
    engine: Engine, access: Access, who: Principal, *, step_id: int, action: str, reason: str
) -> Node:
    if action not in ACTIONS:
        raise InvalidInput(f"action is one of {', '.join(ACTIONS)}", field="action")
    if not reason.strip():
        raise InvalidInput("say why (it goes into the audit log)", field="reason")
    now = engine.clock.now()

    def work(tx: Tx) -> Node:
        node = tx.get_node(step_id, lock=True)
        if node is None:
            raise NotFound(f"no step {step_id}")
        deployment = tx.require_deployment(node.deployment_id, lock=True)
        if deployment.release_id is None:
            # A step of a runbook run: the runbook's permission governs it, not
            # `rollback` on some services (which would reach every run by its ids).
            if not may_read_run(tx, access, who, deployment):
                raise NotFound(f"no step {step_id}")
            access.require(who, "runbook.run", environment=deployment.environment)
        else:
            release = tx.require_release(deployment.release_id, plan=False)
            services = [i.service for i in release.items]
            if not access.can_read(who, services):
                raise NotFound(f"no step {step_id}")
            access.require(who, "rollback", environment=deployment.environment, services=services)
        if node.state is not NodeState.NEEDS_ATTENTION:
            raise Conflict(
                f"step {node.key} is {node.state.value}; only a step that needs "
                "attention is resolved by hand"
            )
        data = {"decision": action, "deployment": deployment.id}

        def resolved(target: NodeState, **values: Unpack[NodeChanges]) -> None:
            move_node(
                tx,
                node,
                target,
                at=now,
                actor=who.name,
                action="step.resolved",
                reason=reason,
                data=data,
                **values,
            )

        if action == "retry":
            resolved(NodeState.READY, not_before=now, error=None)
            tx.notify("work")
        elif action == "skip":
            resolved(NodeState.SKIPPED, finished_at=now)
            node_done(tx, node, at=now)
        else:
            decided = "rollback" if action == "rollback" else "fail"
            settings = dataclasses.replace(deployment.rules, on_failure=decided)
            tx.update_deployment(deployment.id, deployment.state, settings=settings.to_json())
            resolved(
                NodeState.FAILED, finished_at=now, error=f"{action} decided by {who.name}: {reason}"
            )
        if deployment.release_id is not None:
            tx.touch_release(deployment.release_id, now)
        advance(tx, deployment.id, at=now)
        return tx.require_node(step_id)

    result: Node = engine.db.run(work)
    return result
