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
from interlock.engine.transitions import move_deployment, move_node, move_nodes, move_release

STOPPABLE = frozenset({NodeState.PENDING, NodeState.READY, NodeState.WAITING})


def open_deployment(
    tx: Any, release: Release, env: EnvironmentPlan, *, at: datetime, actor: str
) -> int:
    """Queue the release's deployment to ``env`` and start it if nothing blocks it."""
    deployment_id = tx.insert_deployment(
        release_id=release.id,
        kind="rollback" if release.kind == "rollback" else "deploy",
        environment=env.name,
        env_index=env.index,
        state=DeploymentState.QUEUED,
        created_by=actor,
        at=at,
        settings=env.settings,
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
    blocked = [
        f"{i.service}@{i.version}"
        for i in release.items
        if (a := tx.get_artifact(i.service, i.version)) is not None and a.blocked()
    ]
    if blocked:
        tx.update_deployment(
            deployment_id, DeploymentState.QUEUED, abort_reason=f"{', '.join(blocked)} is blocked"
        )
        advance(tx, deployment_id, at=at)
        return int(deployment_id)
    start_queued(tx, env.name, at=at)
    return int(deployment_id)


def start_queued(tx: Any, environment: str, *, at: datetime) -> list[int]:
    """Start the queued deployments of ``environment`` that no active one blocks.

    At most one deployment per service and environment is active; the queue
    is first come, first served, so a later deployment never overtakes an
    earlier one that waits for the same service.
    """
    tx.lock_environment_queue(environment)
    queued = tx.queued_deployments(environment)
    if not queued or tx.environment_lock(environment) is not None:
        return []
    wanted = tx.services_of([d.id for d in queued])
    busy = tx.busy_services(environment, sorted(set().union(*wanted.values())))
    started = []
    for deployment in queued:
        services = wanted[deployment.id]
        if services & busy:
            if (deployment.settings or {}).get("concurrency") == "refuse":
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


def _start(tx: Any, deployment: Deployment, *, at: datetime) -> None:
    release = tx.get_release(deployment.release_id)
    plan = ReleasePlan.from_json(release.plan)
    env = plan.environment(deployment.environment or "")
    previous: dict[str, Any] = {}
    for item in release.items:
        entry = tx.inventory_entry(item.service, env.name)
        if entry is not None:
            previous[item.service] = {
                "version": entry.version,
                "digest": entry.digest,
                "release_id": entry.release_id,
                "deployed_by": entry.deployed_by,
            }
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
    promote(tx, tx.get_deployment(deployment.id), at=at)
    advance(tx, deployment.id, at=at)


def promote(tx: Any, deployment: Deployment, *, at: datetime) -> None:
    """Make ready every pending node with no open needs, within the train's parallel limit.

    A train with no more services than the limit takes one UPDATE; a larger
    one decides in Python which services may start, oldest first.
    """
    settings = deployment.settings or {}
    limit = int(settings.get("parallel") or 0)
    if not limit or int(settings.get("services") or 0) <= limit:
        tx.made_ready(tx.ready_roots(deployment.id, at))
        return
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


def advance(
    tx: Any,
    deployment_id: int,
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
    reason: str | None = None,
) -> None:
    """Bring a deployment up to date with its nodes: stop what cannot run, finish what is done.

    It reads only the count of nodes per state, so it costs the same for a
    graph of five nodes or five hundred, unless it stops nodes: each one
    stopped gets its own audit event (by ``actor``; a cancelled one with ``reason``).
    """
    deployment = tx.get_deployment(deployment_id, lock=True)
    if deployment is None or deployment.state in TERMINAL_DEPLOYMENT:
        return
    if deployment.state is DeploymentState.QUEUED:
        if deployment.cancel_requested:
            finish_deployment(tx, deployment, DeploymentState.CANCELLED, at=at)
        elif deployment.abort_reason:
            finish_deployment(
                tx, deployment, DeploymentState.FAILED, at=at, error=deployment.abort_reason
            )
        return
    by_phase = tx.state_counts_by_phase(deployment_id)
    counts: dict[NodeState, int] = {}
    rolling: dict[NodeState, int] = {}
    for (phase, state), number in by_phase.items():
        counts[state] = counts.get(state, 0) + number
        if phase == "rollback":
            rolling[state] = number
    running = counts.get(NodeState.RUNNING, 0)

    if deployment.cancel_requested and deployment.state is not DeploymentState.ROLLING_BACK:
        # (A rollback under way is never stopped half-way: it finishes first.)
        stoppable = [s for s in (*STOPPABLE, NodeState.NEEDS_ATTENTION) if counts.get(s)]
        move_nodes(
            tx,
            deployment_id,
            stoppable,
            NodeState.CANCELLED,
            at=at,
            actor=actor,
            reason=reason or "its deployment was cancelled",
        )
        if running:
            # A node claimed while the cancel was being decided stops too.
            if tx.request_cancel(deployment_id):
                tx.notify("cancel")
        else:
            finish_deployment(tx, deployment, DeploymentState.CANCELLED, at=at)
        return

    phase = "rollback" if rolling else None
    mine = rolling if rolling else counts
    if mine.get(NodeState.FAILED) or (deployment.abort_reason and not rolling):
        stoppable = [s for s in STOPPABLE if mine.get(s)]
        first = None
        if stoppable or not running:
            first = next(iter(tx.nodes_in_state(deployment_id, NodeState.FAILED, 1)), None)
        if stoppable:
            move_nodes(
                tx,
                deployment_id,
                stoppable,
                NodeState.SKIPPED,
                at=at,
                actor=actor,
                reason=(
                    f"not run: {first.kind} {first.key} failed"
                    if first
                    else f"not run: {deployment.abort_reason or 'the deployment failed'}"
                ),
                phase=phase,
            )
        if running:
            if deployment.abort_reason and tx.request_cancel(deployment_id):
                tx.notify("cancel")
            return
        error = (
            f"{first.kind} {first.key} failed: {first.error or 'no reason given'}"
            if first
            else deployment.abort_reason or "failed"
        )
        from interlock.engine.rollback import deployment_failed, rollback_failed

        if rolling:
            rollback_failed(tx, deployment, at=at, error=error)
        else:
            deployment_failed(tx, deployment, at=at, error=deployment.abort_reason or error)
        return

    attention = mine.get(NodeState.NEEDS_ATTENTION, 0)
    paused = deployment.state is DeploymentState.NEEDS_ATTENTION
    if attention and not paused:
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
    if not attention and paused:
        back = DeploymentState.ROLLING_BACK if rolling else DeploymentState.RUNNING
        move_deployment(tx, deployment, back, at=at, actor=SYSTEM_ACTOR)
        _release_follows(tx, deployment, ReleaseState.RUNNING, at=at)
        deployment = tx.get_deployment(deployment_id)

    done = mine.get(NodeState.SUCCEEDED, 0) + mine.get(NodeState.SKIPPED, 0)
    if done == sum(mine.values()):
        if rolling:
            from interlock.engine.rollback import rollback_done

            rollback_done(tx, deployment, at=at)
        else:
            finish_deployment(tx, deployment, DeploymentState.SUCCEEDED, at=at)


def node_done(tx: Any, node: Node, *, at: datetime, deployment: Deployment | None = None) -> None:
    """``node`` succeeded (or a person skipped it): free its dependents, record its service.

    ``deployment`` saves a read when the caller has it (its settings are what matter).
    """
    deployment = deployment or tx.get_deployment(node.deployment_id)
    settings = deployment.settings or {}
    limit = int(settings.get("parallel") or 0)
    if not limit or int(settings.get("services") or 0) <= limit:
        tx.made_ready(tx.satisfy(node, at))
    else:
        tx.count_off(node)
        promote(tx, deployment, at=at)
    service_finished(tx, node, deployment, at=at)


def service_finished(tx: Any, node: Node, deployment: Deployment, *, at: datetime) -> None:
    """Record in the inventory that ``node``'s service now runs its new version.

    Acts once every deploy step of that service in the deployment is done.
    """
    if node.service is None or node.phase != "deploy" or deployment.release_id is None:
        return
    if any(key.startswith(f"{node.service}/") for key in node.dependents):
        return  # a later step of the same service is still to come
    if tx.open_service_nodes(node.deployment_id, node.service, "deploy"):
        return
    release = tx.get_release(deployment.release_id, plan=False)
    item = next(i for i in release.items if i.service == node.service)
    before = tx.set_inventory(
        InventoryEntry(
            service=item.service,
            environment=deployment.environment or "",
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
        data={"release": release.id, "deployment": deployment.id, "kind": release.kind},
    )
    from interlock.engine.incidents import resolve_by_deployment

    resolve_by_deployment(tx, deployment, release, item.service, at=at)


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
    if deployment.kind == "runbook":
        from interlock.engine.runbooks import wake_parent

        wake_parent(tx, deployment, at=at)
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
