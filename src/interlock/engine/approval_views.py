"""Approval gates as people see them: what a gate waits for, and who may sign it.

Queries only; recording a decision is :func:`interlock.engine.approvals.give`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from interlock.domain.records import Deployment, Node, Release, User
from interlock.domain.states import NodeState
from interlock.engine.access import Access
from interlock.engine.approvals import (
    gate_status,
    people_lookup,
)
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.waits import manual_for
from interlock.storage.tx import Tx


def describe_gate(
    tx: Tx,
    engine: Engine,
    node: Node,
    deployment: Deployment,
    release: Release,
    now: datetime,
    can_approve: Callable[[str], bool] | None = None,
    people: Callable[[str], tuple[User, Principal] | None] | None = None,
) -> dict[str, Any]:
    """What an open gate waits on, in words a person can act on."""
    since = node.started_at or deployment.started_at
    info: dict[str, Any] = {
        "environment": deployment.environment,
        "gate": node.name,
        "type": node.executor,
        "state": node.state.value,
        "since": since.isoformat() if since else None,
        "waiting_for": node.error,
    }
    if node.executor == "approval":
        status, valid, _ = gate_status(
            tx, engine, node, deployment.environment or "", release, now, people
        )
        rules = []
        for entry in status:
            described = entry.as_dict()
            if can_approve is not None:
                described["can_clear"] = [n for n in entry.eligible if can_approve(n)]
            described["given_by"] = [
                {
                    "by": a.approver,
                    "at": a.created_at.isoformat(),
                    "expires_at": a.expires_at.isoformat() if a.expires_at else None,
                    "comment": a.comment,
                }
                for a in valid
                if a.approver in entry.given_by
            ]
            rules.append(described)
        expiries = [a.expires_at for a in valid if a.expires_at is not None]
        info["rules"] = rules
        info["expires_at"] = min(expiries).isoformat() if expiries else None
        info["approvals_last"] = node.spec.get("expires")  # seconds an approval counts
    elif node.executor == "window":
        info["opens_at"] = (node.result or {}).get("opens_at")
        info["reason"] = (node.result or {}).get("reason")
    else:
        info["last"] = node.result
        if node.not_before is not None and node.state is NodeState.READY:
            info["next_check"] = node.not_before.isoformat()
    return info


def pending_for(
    engine: Engine, access: Access, who: Principal, *, limit: int = 500, after: int | None = None
) -> list[tuple[int, dict[str, Any] | None]]:
    """The next ``limit`` approval gates and manual steps waiting now (after the node
    ``after``), oldest first.

    Each is ``(node id, what to show)``, the latter ``None`` unless ``who`` can
    give an approval it still needs or sign the manual step off (the caller pages on
    by node id either way).
    """
    now = engine.clock.now()
    found: list[tuple[int, dict[str, Any] | None]] = []
    with engine.db.read() as tx:
        people = people_lookup(tx, engine)  # approvers are read once, not once per gate
        for node in tx.waiting_nodes(("approval", "manual"), limit, after):
            found.append((node.id, None))
            deployment = tx.get_deployment(node.deployment_id)
            if deployment is not None and node.executor == "manual":
                manual = manual_for(tx, engine, access, who, people, node, deployment, now)
                if manual is not None:
                    found[-1] = (node.id, manual)
                continue
            if deployment is None or deployment.release_id is None:
                continue
            release = tx.get_release(deployment.release_id)
            if release is None:
                continue
            services = [i.service for i in release.items]
            if who.name in release.authors() or not who.is_person():
                continue
            if not access.allows(
                who, "approve", environment=deployment.environment, services=services
            ):
                continue
            status, valid, _ = gate_status(
                tx, engine, node, deployment.environment or "", release, now, people
            )
            if any(a.approver == who.name for a in valid):
                continue
            needed = [s for s in status if s.missing and who.name in s.eligible]
            if not needed:
                continue
            found[-1] = (
                node.id,
                {
                    "kind": "approval",
                    "release": release.id,
                    "environment": deployment.environment,
                    "gate": node.name,
                    "items": [f"{i.service}@{i.version}" for i in release.items],
                    "reason": release.reason,
                    "created_by": release.created_by,
                    "waiting_since": (node.started_at or now).isoformat(),
                    "rules": [s.as_dict() for s in needed],
                },
            )
    return found


def open_gates(
    engine: Engine,
    access: Access,
    release: Release,
    deployments: list[Any],
) -> list[dict[str, Any]]:
    """Every gate of the release that is still open, described (for `release show`)."""
    now = engine.clock.now()
    services = [i.service for i in release.items]
    out = []
    with engine.db.read() as tx:
        people = people_lookup(tx, engine)  # shared with gate_status: one read per person

        for view in deployments:
            deployment = view.deployment
            for node in view.nodes:
                if node.kind != "gate" or node.state not in (
                    NodeState.WAITING,
                    NodeState.READY,
                    NodeState.RUNNING,
                ):
                    continue

                def can_approve(name: str, env: str | None = deployment.environment) -> bool:
                    found = people(name)
                    if found is None or found[0].disabled:
                        return False
                    who = found[1]
                    return who.is_person() and access.allows(
                        who, "approve", environment=env, services=services
                    )

                out.append(
                    describe_gate(tx, engine, node, deployment, release, now, can_approve, people)
                )
    return out
