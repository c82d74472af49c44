"""How a release moves: deployments open, start, advance their graphs and finish.

All functions here run inside the caller's transaction, so a transition and
everything it implies (the next node made ready, the inventory updated, the
next environment opened, a queued deployment started) commit together or not
at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.domain.plan import EnvironmentPlan, ReleasePlan
from interlock.domain.records import Deployment, InventoryEntry, Node, Release
from interlock.domain.states import (
    TERMINAL_DEPLOYMENT,
    TERMINAL_RELEASE,
    DeploymentState,
    NodeState,
    ReleaseState,
)
from interlock.engine.core import SYSTEM_ACTOR
from interlock.engine.transitions import move_deployment, move_release

STOPPABLE = frozenset({NodeState.PENDING, NodeState.READY, NodeState.WAITING})


def open_deployment(
    tx: Any, release: Release, env: EnvironmentPlan, *, at: datetime, actor: str
) -> int:
    """Queue the release's deployment to ``env`` and start it if nothing blocks it."""
    deployment_id = tx.insert_deployment(
        release_id=release.id,
        kind="deploy",
        environment=env.name,
        env_index=env.index,
        state=DeploymentState.QUEUED,
        created_by=actor,
        at=at,
    )
    tx.audit(
        at=at,
        actor=actor,
        action="deployment.queued",
        object_type="deployment",
        object_id=deployment_id,
        after={"state": DeploymentState.QUEUED.value},
        data={"release": release.id, "environment": env.name},
    )
    tx.update_release(release.id, release.state, at, environment=env.name)
    start_queued(tx, env.name, at=at)
    return int(deployment_id)


def start_queued(tx: Any, environment: str, *, at: datetime) -> list[int]:
    """Start the queued deployments of ``environment`` that no active one blocks.

    At most one deployment per service and environment is active; the queue
    is first come, first served, so a later deployment never overtakes an
    earlier one that waits for the same service.
    """
    queued = tx.queued_deployments(environment)
    if not queued or tx.environment_lock(environment) is not None:
        return []
    wanted = tx.services_of([d.id for d in queued])
    busy = tx.busy_services(environment, sorted(set().union(*wanted.values())))
    started = []
    for deployment in queued:
        services = wanted[deployment.id]
        if services & busy:
            if _refuses_to_queue(tx, deployment):
                finish_deployment(
                    tx,
                    deployment,
                    DeploymentState.FAILED,
                    at=at,
                    error=f"another deployment of {', '.join(sorted(services & busy))} is "
                    f"active in {environment}, and {environment} refuses to queue "
                    "(concurrency: refuse)",
                    requeue=False,
                )
                continue
            busy |= services
            continue
        busy |= services
        current = tx.get_deployment(deployment.id, lock=True)
        if current is None or current.state is not DeploymentState.QUEUED:
            continue  # a nested start (an empty graph finishing at once) got to it first
        _start(tx, current, at=at)
        started.append(deployment.id)
    return started


def _refuses_to_queue(tx: Any, deployment: Deployment) -> bool:
    release = tx.get_release(deployment.release_id)
    env = ReleasePlan.from_json(release.plan).environment(deployment.environment)
    return bool(env.settings.get("concurrency") == "refuse")


def _start(tx: Any, deployment: Deployment, *, at: datetime) -> None:
    release = tx.get_release(deployment.release_id)
    plan = ReleasePlan.from_json(release.plan)
    env = plan.environment(deployment.environment)
    previous: dict[str, Any] = {}
    for item in release.items:
        entry = tx.inventory_entry(item.service, env.name)
        if entry is not None:
            previous[item.service] = {"version": entry.version, "digest": entry.digest}
    move_deployment(
        tx,
        deployment,
        DeploymentState.RUNNING,
        at=at,
        actor=SYSTEM_ACTOR,
        started_at=at,
        previous=previous,
        data={"previous": previous, "steps": [n.key for n in env.nodes]},
    )
    tx.insert_nodes(deployment.id, env.nodes, at)
    if tx.ready_roots(deployment.id, at):
        tx.notify("work")
    advance(tx, deployment.id, at=at)


def advance(tx: Any, deployment_id: int, *, at: datetime) -> None:
    """Bring a deployment up to date with its nodes: stop what cannot run, finish what is done.

    It reads only the count of nodes per state, so it costs the same for a
    graph of five nodes or five hundred.
    """
    deployment = tx.get_deployment(deployment_id, lock=True)
    if deployment is None or deployment.state in TERMINAL_DEPLOYMENT:
        return
    if deployment.state is DeploymentState.QUEUED:
        if deployment.cancel_requested:
            finish_deployment(tx, deployment, DeploymentState.CANCELLED, at=at)
        return
    counts = tx.state_counts(deployment_id)
    running = counts.get(NodeState.RUNNING, 0)

    if deployment.cancel_requested:
        tx.stop_nodes(
            deployment_id, [*STOPPABLE, NodeState.NEEDS_ATTENTION], NodeState.CANCELLED, at
        )
        if not running:
            finish_deployment(tx, deployment, DeploymentState.CANCELLED, at=at)
        return

    if counts.get(NodeState.FAILED):
        tx.stop_nodes(deployment_id, list(STOPPABLE), NodeState.SKIPPED, at)
        if not running:
            first = tx.nodes_in_state(deployment_id, NodeState.FAILED, 1)[0]
            finish_deployment(
                tx,
                deployment,
                DeploymentState.FAILED,
                at=at,
                error=f"{first.kind} {first.key} failed: {first.error or 'no reason given'}",
            )
        return

    attention = counts.get(NodeState.NEEDS_ATTENTION, 0)
    if attention and deployment.state is DeploymentState.RUNNING:
        names = ", ".join(
            n.key for n in tx.nodes_in_state(deployment_id, NodeState.NEEDS_ATTENTION)
        )
        move_deployment(
            tx,
            deployment,
            DeploymentState.NEEDS_ATTENTION,
            at=at,
            actor=SYSTEM_ACTOR,
            reason=f"waiting for a person to resolve {names}",
        )
        _release_follows(tx, deployment, ReleaseState.NEEDS_ATTENTION, at=at)
        return
    if not attention and deployment.state is DeploymentState.NEEDS_ATTENTION:
        move_deployment(tx, deployment, DeploymentState.RUNNING, at=at, actor=SYSTEM_ACTOR)
        _release_follows(tx, deployment, ReleaseState.RUNNING, at=at)
        deployment = tx.get_deployment(deployment_id)

    done = counts.get(NodeState.SUCCEEDED, 0) + counts.get(NodeState.SKIPPED, 0)
    if done == sum(counts.values()):
        finish_deployment(tx, deployment, DeploymentState.SUCCEEDED, at=at)


def node_done(tx: Any, node: Node, *, at: datetime) -> None:
    """``node`` succeeded (or a person skipped it): free its dependents, record its service."""
    if tx.satisfy(node, at):
        tx.notify("work")
    service_finished(tx, node, at=at)


def service_finished(tx: Any, node: Node, *, at: datetime) -> None:
    """Record in the inventory that ``node``'s service now runs its new version.

    Acts once every deploy step of that service in the deployment is done.
    """
    if node.service is None or node.phase != "deploy":
        return
    if tx.open_service_nodes(node.deployment_id, node.service, "deploy"):
        return
    deployment = tx.get_deployment(node.deployment_id)
    if deployment.kind != "deploy" or deployment.release_id is None:
        return
    release = tx.get_release(deployment.release_id, plan=False)
    item = next(i for i in release.items if i.service == node.service)
    before = tx.set_inventory(
        InventoryEntry(
            service=item.service,
            environment=deployment.environment,
            version=item.version,
            digest=item.digest,
            release_id=release.id,
            deployment_id=deployment.id,
            deployed_at=at,
            deployed_by=release.created_by,
        )
    )
    tx.audit(
        at=at,
        actor=SYSTEM_ACTOR,
        action="service.deployed",
        object_type="service",
        object_id=f"{item.service}@{deployment.environment}",
        before={"version": before.version, "digest": before.digest} if before else None,
        after={"version": item.version, "digest": item.digest},
        data={"release": release.id, "deployment": deployment.id},
    )


def finish_deployment(
    tx: Any,
    deployment: Deployment,
    state: DeploymentState,
    *,
    at: datetime,
    error: str | None = None,
    requeue: bool = True,
) -> None:
    """End a deployment and move its release on: next environment, or its own end."""
    move_deployment(
        tx,
        deployment,
        state,
        at=at,
        actor=SYSTEM_ACTOR,
        reason=error,
        finished_at=at,
        error=error,
    )
    if deployment.release_id is not None:
        release = tx.get_release(
            deployment.release_id, lock=True, plan=state is DeploymentState.SUCCEEDED
        )
        if release is not None and release.state not in TERMINAL_RELEASE:
            _release_after(tx, release, deployment, state, at=at, error=error)
    if requeue and deployment.environment is not None:
        start_queued(tx, deployment.environment, at=at)


def _release_after(
    tx: Any,
    release: Release,
    deployment: Deployment,
    state: DeploymentState,
    *,
    at: datetime,
    error: str | None,
) -> None:
    if state is DeploymentState.SUCCEEDED:
        plan = ReleasePlan.from_json(release.plan)
        following = [e for e in plan.environments if e.index == deployment.env_index + 1]
        if following and release.state is ReleaseState.RUNNING:
            open_deployment(tx, release, following[0], at=at, actor=SYSTEM_ACTOR)
        elif not following:
            move_release(
                tx, release, ReleaseState.SUCCEEDED, at=at, actor=SYSTEM_ACTOR, finished_at=at
            )
        return
    target = ReleaseState.CANCELLED if state is DeploymentState.CANCELLED else ReleaseState.FAILED
    move_release(
        tx,
        release,
        target,
        at=at,
        actor=SYSTEM_ACTOR,
        reason=error,
        finished_at=at,
        error=error,
    )


def _release_follows(
    tx: Any, deployment: Deployment, target: ReleaseState, *, at: datetime
) -> None:
    if deployment.release_id is None:
        return
    release = tx.get_release(deployment.release_id, lock=True)
    if (
        release is not None
        and release.state is not target
        and release.state
        in (
            ReleaseState.RUNNING,
            ReleaseState.NEEDS_ATTENTION,
        )
    ):
        move_release(tx, release, target, at=at, actor=SYSTEM_ACTOR)
