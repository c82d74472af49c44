"""When a deployment fails and its environment says roll back: which steps, and to what.

A policy: it appends nodes and restores the inventory, and returns what it did;
the deployment's lifecycle (:mod:`interlock.engine.progress`) decides what
follows. Automatic rollback runs each affected service's rollback steps (by
default its deploy steps) with the version that ran there before, in reverse
dependency order, inside the same deployment; it ends ``rolled_back`` with the
inventory restored. A rollback that fails ends ``failed``: a person must act.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from interlock.domain.plan import NodePlan, ReleasePlan
from interlock.domain.records import Deployment, InventoryEntry
from interlock.domain.states import DeploymentState, NodeState
from interlock.engine.core import SYSTEM_ACTOR
from interlock.engine.graph import promote
from interlock.engine.inventory import set_running
from interlock.engine.transitions import move_deployment
from interlock.storage.tx import Tx

STARTED = frozenset(
    {
        NodeState.RUNNING,
        NodeState.SUCCEEDED,
        NodeState.FAILED,
        NodeState.NEEDS_ATTENTION,
        NodeState.CANCELLED,
    }
)


def start_rollback(
    tx: Tx,
    deployment: Deployment,
    *,
    at: datetime,
    error: str,
    only_failed: bool = False,
    actor: str = SYSTEM_ACTOR,
) -> int | None:
    """Append the rollback steps of the affected services; how many, or ``None`` if no service
    has a version to go back to (the caller then fails the deployment; with ``0`` appended,
    the rollback is done at once)."""
    nodes = tx.nodes_of(deployment.id)
    started = {
        n.service
        for n in nodes
        if n.phase == "deploy" and n.service and (n.attempt > 0 or n.state in STARTED)
    }
    failed = {n.service for n in nodes if n.service and n.state is NodeState.FAILED}
    wanted = (failed or started) if only_failed else started
    targets = sorted(s for s in wanted if s in deployment.previous)
    if not targets:
        return None
    release = tx.require_release_of(deployment)
    env = ReleasePlan.from_json(release.plan).environment(deployment.environment or "")
    depends = env.settings.depends
    plans: list[NodePlan] = []
    last: dict[str, str] = {}
    for service in _reverse_order(targets, depends):
        # A service rolls back after every service that depends on it.
        first_needs = tuple(last[t] for t in targets if service in depends.get(t, []) and t in last)
        chain = [n for n in env.rollback if n.service == service]
        previous: tuple[str, ...] = first_needs
        for node in chain:
            plans.append(replace(node, needs=previous, spec={**node.spec, "to_previous": True}))
            previous = (node.key,)
        if chain:
            last[service] = chain[-1].key
    back_to = {s: deployment.previous[s]["version"] for s in targets}
    move_deployment(
        tx,
        deployment,
        DeploymentState.ROLLING_BACK,
        at=at,
        actor=actor,
        reason=error,
        error=error,
        data={"services": targets, "back_to": back_to},
    )
    tx.insert_nodes(deployment.id, plans, at, offset=len(nodes))
    promote(tx, tx.require_deployment(deployment.id), at=at)
    return len(plans)


def _reverse_order(services: list[str], depends: dict[str, list[str]]) -> list[str]:
    """Dependents first: the reverse of the order they deployed in."""
    placed: list[str] = []
    pending = list(services)
    while pending:
        for name in pending:
            if all(t in placed for t in pending if name in depends.get(t, []) and t != name):
                placed.append(name)
                pending.remove(name)
                break
        else:
            placed.extend(pending)
            break
    return placed


def restore_inventory(tx: Tx, deployment: Deployment, *, at: datetime) -> str:
    """Every rollback step succeeded: record that the previous versions run again.

    Returns what runs again, for the deployment's message (``api is back on 1.0``).
    """
    services = sorted(
        {n.service for n in tx.nodes_of(deployment.id) if n.phase == "rollback" and n.service}
    )
    release = tx.require_release_of(deployment, plan=False)
    for service in services:
        previous = deployment.previous[service]
        entry = InventoryEntry(
            service=service,
            environment=deployment.environment or "",
            version=previous["version"],
            digest=previous.get("digest"),
            # What runs again came from the release that first deployed it.
            release_id=previous.get("release_id", release.id if release else None),
            deployment_id=deployment.id,
            deployed_at=at,
            deployed_by=SYSTEM_ACTOR,
        )
        data = {"deployment": deployment.id}
        set_running(tx, entry, action="service.rolled_back", data=data, at=at)
    return ", ".join(f"{s} is back on {deployment.previous[s]['version']}" for s in services)
