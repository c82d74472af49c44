"""Every state change goes through here: checked against the table, guarded, audited.

The guarded update (``WHERE state = <what we read>``) makes a lost race a
:class:`Conflict` instead of a silent overwrite; the audit event is written
in the same transaction as the change it records.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Unpack

from interlock.domain.records import Deployment, Node, Release
from interlock.domain.states import DeploymentState, NodeState, ReleaseState, check
from interlock.errors import Conflict
from interlock.storage.changes import DeploymentChanges, NodeChanges, ReleaseChanges
from interlock.storage.tx import Tx


def move_release(
    tx: Tx,
    release: Release,
    target: ReleaseState,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    **values: Unpack[ReleaseChanges],
) -> None:
    """Move ``release`` to ``target`` and record it."""
    check(f"release {release.id}", release.state, target)
    values["state"] = target
    if not tx.update_release(release.id, release.state, at, **values):
        raise Conflict(f"release {release.id} changed meanwhile; try again")
    tx.audit(
        at=at,
        actor=actor,
        action=f"release.{target.value}",
        object_type="release",
        object_id=release.id,
        reason=reason,
        before={"state": release.state.value},
        after={"state": target.value},
        data=data,
    )


def move_deployment(
    tx: Tx,
    deployment: Deployment,
    target: DeploymentState,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    **values: Unpack[DeploymentChanges],
) -> None:
    """Move ``deployment`` to ``target`` and record it."""
    check(f"deployment {deployment.id}", deployment.state, target)
    values["state"] = target
    if not tx.update_deployment(deployment.id, deployment.state, **values):
        raise Conflict(f"deployment {deployment.id} changed meanwhile; try again")
    tx.audit(
        at=at,
        actor=actor,
        action=f"deployment.{target.value}",
        object_type="deployment",
        object_id=deployment.id,
        reason=reason,
        before={"state": deployment.state.value},
        after={"state": target.value},
        data={
            "environment": deployment.environment,
            "release": deployment.release_id,
            **(data or {}),
        },
    )
    if deployment.release_id is not None:
        tx.touch_release(deployment.release_id, at)


def move_node(
    tx: Tx,
    node: Node,
    target: NodeState,
    *,
    at: datetime,
    actor: str,
    audit: bool = True,
    action: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    **values: Unpack[NodeChanges],
) -> bool:
    """Move ``node`` to ``target``; ``False`` when it moved meanwhile (a stale lease).

    A running node whose cancellation was asked never becomes ``succeeded``
    (``False`` too): the caller records it cancelled, and nothing that follows
    a success (its dependents, the inventory) happens.
    """
    check(f"{node.kind} {node.key}", node.state, target)
    guard = node.state is NodeState.RUNNING and target is NodeState.SUCCEEDED
    values["state"] = target
    if not tx.update_node(node, node.state, unless_cancelled=guard, **values):
        return False
    if audit:
        _audit_node(tx, node, target, at=at, actor=actor, action=action, reason=reason, data=data)
    return True


def move_nodes(
    tx: Tx,
    deployment_id: int,
    sources: Iterable[NodeState],
    target: NodeState,
    *,
    at: datetime,
    actor: str,
    reason: str | None = None,
    phase: str | None = None,
) -> None:
    """Move every node of a deployment in one of ``sources`` to ``target`` (skip, cancel).

    One statement per source state, and one audit event per node moved, so the
    audit of each step tells its whole story.
    """
    for source in sources:
        check(f"nodes of deployment {deployment_id}", source, target)
        for node in tx.stop_nodes(deployment_id, source, target, at, phase=phase):
            _audit_node(tx, node, target, at=at, actor=actor, reason=reason)


def _audit_node(
    tx: Tx,
    node: Node,
    target: NodeState,
    *,
    at: datetime,
    actor: str,
    action: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    tx.audit(
        at=at,
        actor=actor,
        action=action or f"{node.kind}.{target._value_}",
        object_type=node.kind,
        object_id=node.id,
        reason=reason,
        # (``_value_``: the attribute ``.value`` reads, with no Python call)
        before={"state": node.state._value_},
        after={"state": target._value_},
        data={
            "deployment": node.deployment_id,
            "key": node.key,
            "attempt": node.attempt,
            **(data or {}),
        },
    )
