"""Why a queued deployment has not started: what it is queued behind.

A deployment queues while its environment is locked, or while another
deployment holds one of its services there: an active one, or one queued
before it (first come, first served; see
:func:`~interlock.engine.progress.start_queued`). Its release is ``running``
all the while; this says on what, and what would move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interlock.domain.records import Deployment, Node
from interlock.domain.states import DeploymentState, NodeState
from interlock.engine.core import Engine
from interlock.storage.tx import Tx

_AHEAD = (
    DeploymentState.RUNNING.value,
    DeploymentState.NEEDS_ATTENTION.value,
    DeploymentState.ROLLING_BACK.value,
    DeploymentState.QUEUED.value,
)


def queued_behind(engine: Engine, deployments: Sequence[Deployment]) -> list[dict[str, Any]]:
    """What each queued deployment of ``deployments`` waits for, first the one it waits on most.

    An entry is an environment lock (``lock``) or a deployment ahead (``deployment``,
    ``release``, ``services`` it holds, its ``state``); ``detail`` says it in a sentence.
    """
    found: list[dict[str, Any]] = []
    with engine.db.read() as tx:
        for deployment in deployments:
            found.extend(blockers_of(tx, deployment))
    return found


def blockers_of(tx: Tx, deployment: Deployment) -> list[dict[str, Any]]:
    """What the queued ``deployment`` waits for, inside ``tx`` (empty unless it is queued).

    A lock entry has ``lock`` (``by``, ``reason``, ``since``); an entry for a deployment
    ahead has ``step_id`` too when that deployment is paused at a step for a person.
    """
    if deployment.state is not DeploymentState.QUEUED or not deployment.environment:
        return []
    found: list[dict[str, Any]] = []
    environment = str(deployment.environment)
    lock = tx.environment_lock(environment)
    if lock is not None:
        found.append(
            {
                "queued": deployment.id,
                "environment": environment,
                "lock": {
                    "by": lock.locked_by,
                    "reason": lock.reason,
                    "since": lock.locked_at.isoformat(),
                },
                "detail": f"{environment} is locked by {lock.locked_by}: {lock.reason} "
                "(it starts once the lock is lifted)",
            }
        )
    ahead = [
        d
        for d in tx.list_deployments(environment=environment, states=_AHEAD, limit=1000)
        if d.id != deployment.id and (d.state is not DeploymentState.QUEUED or d.id < deployment.id)
    ]
    services = tx.services_of([deployment.id, *(d.id for d in ahead)])
    for other in sorted(ahead, key=lambda d: d.id):
        shared = services[deployment.id] & services[other.id]
        if not shared:
            continue
        nodes = tx.nodes_of(other.id)
        stuck = _stuck(other, nodes)
        entry: dict[str, Any] = {
            "queued": deployment.id,
            "environment": environment,
            "deployment": other.id,
            "release": other.release_id,
            "services": sorted(shared),
            "state": other.state.value,
            "detail": f"queued behind deployment {other.id}"
            + (f" (release {other.release_id})" if other.release_id else "")
            + f" of {', '.join(sorted(shared))} in {environment}, which {_why(other, nodes)}",
        }
        if stuck is not None:
            entry["step_id"] = stuck.id
            entry["step"] = stuck.key
        found.append(entry)
    return found


def _stuck(deployment: Deployment, nodes: Sequence[Node]) -> Node | None:
    """The step a deployment ahead is paused at for a person, if it is paused at one."""
    return next((n for n in nodes if n.state is NodeState.NEEDS_ATTENTION), None)


def _why(deployment: Deployment, nodes: Sequence[Node]) -> str:
    """What the deployment ahead is doing, and who can move it."""
    stuck = next((n for n in nodes if n.state is NodeState.NEEDS_ATTENTION), None)
    if deployment.state is DeploymentState.NEEDS_ATTENTION or stuck is not None:
        step = f" at step {stuck.key} (id {stuck.id})" if stuck is not None else ""
        return (
            f"is paused for a person{step}: it needs attention (`interlock resolve` "
            "retries, skips or fails it; cancelling its release frees the queue)"
        )
    waiting = next((n for n in nodes if n.state is NodeState.WAITING), None)
    if waiting is not None:
        return f"waits for {waiting.key} ({waiting.executor})"
    if deployment.state is DeploymentState.QUEUED:
        return "is queued itself"
    return "is rolling back" if deployment.state is DeploymentState.ROLLING_BACK else "is running"
