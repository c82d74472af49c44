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
from interlock.domain.records import Deployment, Node, Release
from interlock.domain.states import (
    TERMINAL_DEPLOYMENT,
    TERMINAL_RELEASE,
    DeploymentState,
    NodeState,
    ReleaseState,
)
from interlock.engine import incidents, inventory, rollback
from interlock.engine.core import SYSTEM_ACTOR
from interlock.engine.graph import free_dependents, promote, wake_parent
from interlock.engine.next_action import (
    EndQueued,
    Pause,
    Settle,
    StopForCancel,
    StopForFailure,
    Wait,
    next_action,
)
from interlock.engine.transitions import move_deployment, move_nodes, move_release
from interlock.storage.tx import Tx


def open_deployment(
    tx: Tx, release: Release, env: EnvironmentPlan, *, at: datetime, actor: str
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
        settings=env.settings.to_json(),
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


def start_queued(tx: Tx, environment: str, *, at: datetime) -> list[int]:
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
            if deployment.rules.concurrency == "refuse":
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


def _start(tx: Tx, deployment: Deployment, *, at: datetime) -> None:
    release = tx.require_release_of(deployment)
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
    promote(tx, tx.require_deployment(deployment.id), at=at)
    advance(tx, deployment.id, at=at)


def advance(
    tx: Tx,
    deployment_id: int,
    *,
    at: datetime,
    actor: str = SYSTEM_ACTOR,
    reason: str | None = None,
) -> Deployment | None:
    """Bring a deployment up to date with its nodes: stop what cannot run, finish what is done.

    It reads only the count of nodes per state, so it costs the same for a
    graph of five nodes or five hundred, unless it stops nodes: each one
    stopped gets its own audit event (by ``actor``; a cancelled one with ``reason``).
    What to do is :func:`~interlock.engine.next_action.next_action`'s answer.

    Returns the deployment as read here when there was nothing to do (it goes
    on with its nodes as it was), else ``None``.
    """
    progress = tx.progress_of(deployment_id)
    if progress is None or progress[0].state in TERMINAL_DEPLOYMENT:
        return None
    deployment, by_phase = progress
    queued = deployment.state is DeploymentState.QUEUED
    action = next_action(
        deployment.state,
        cancel_requested=deployment.cancel_requested,
        abort_reason=deployment.abort_reason,
        by_phase={} if queued else by_phase,
    )
    match action:
        case Wait():
            return deployment
        case EndQueued(state=state, error=error):
            finish_deployment(tx, deployment, state, at=at, error=error)
        case StopForCancel(stop=stop, running=running):
            move_nodes(
                tx,
                deployment_id,
                list(stop),
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
        case StopForFailure():
            _stop_failed(tx, deployment, action, at=at, actor=actor)
        case Pause():
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
        case Settle(resume=resume, finish=finish, rolling=rolling):
            if resume is not None:
                move_deployment(tx, deployment, resume, at=at, actor=SYSTEM_ACTOR)
                _release_follows(tx, deployment, ReleaseState.RUNNING, at=at)
                deployment = tx.require_deployment(deployment_id)
            if finish and rolling:
                rollback_done(tx, deployment, at=at)
            elif finish:
                finish_deployment(tx, deployment, DeploymentState.SUCCEEDED, at=at)
    return None


def _stop_failed(
    tx: Tx, deployment: Deployment, action: StopForFailure, *, at: datetime, actor: str
) -> None:
    """Skip what cannot run any more; once nothing runs, fail (or roll back) the deployment."""
    first = None
    if action.stop or not action.running:
        first = next(iter(tx.nodes_in_state(deployment.id, NodeState.FAILED, 1)), None)
    if action.stop:
        move_nodes(
            tx,
            deployment.id,
            list(action.stop),
            NodeState.SKIPPED,
            at=at,
            actor=actor,
            reason=(
                f"not run: {first.kind} {first.key} failed"
                if first
                else f"not run: {deployment.abort_reason or 'the deployment failed'}"
            ),
            phase=action.phase,
        )
    if action.running:
        if deployment.abort_reason and tx.request_cancel(deployment.id):
            tx.notify("cancel")
        return
    error = (
        f"{first.kind} {first.key} failed: {first.error or 'no reason given'}"
        if first
        else deployment.abort_reason or "failed"
    )
    if action.rolling:
        rollback_failed(tx, deployment, at=at, error=error)
    else:
        deployment_failed(tx, deployment, at=at, error=deployment.abort_reason or error)


def node_done(
    tx: Tx,
    node: Node,
    *,
    at: datetime,
    deployment: Deployment | None = None,
    release: Release | None = None,
) -> None:
    """``node`` succeeded (or a person skipped it): free its dependents, record its service.

    ``deployment`` saves a read when the caller has it (its settings are what matter);
    ``release``, the deployment's release as a worker holds it, saves one when the
    service is recorded (only its items, id, author and kind are read, which never change).
    """
    deployment = deployment or tx.require_deployment(node.deployment_id)
    free_dependents(tx, node, deployment, at=at)
    recorded = inventory.record_deployed(tx, node, deployment, at=at, release=release)
    if recorded is not None:
        release, service = recorded
        incidents.resolve_by_deployment(tx, deployment, release, service, at=at)


def finish_deployment(
    tx: Tx,
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
        wake_parent(tx, deployment, at=at)
    if deployment.release_id is not None:
        release = tx.get_release(
            deployment.release_id, lock=True, plan=state is DeploymentState.SUCCEEDED
        )
        if release is not None and release.state not in TERMINAL_RELEASE:
            _release_after(tx, release, deployment, state, at=at, error=error)
    if requeue and deployment.environment is not None:
        if tx.queue_may_wait(deployment.environment):  # the queue's lock only if needed
            start_queued(tx, deployment.environment, at=at)


def _release_after(
    tx: Tx,
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


def _release_follows(tx: Tx, deployment: Deployment, target: ReleaseState, *, at: datetime) -> None:
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


def deployment_failed(tx: Tx, deployment: Deployment, *, at: datetime, error: str) -> None:
    """Nothing runs any more and something failed: follow ``on_failure``."""
    incidents.open_for_failure(tx, deployment, at=at, error=error)
    mode = deployment.rules.on_failure
    if mode in ("rollback", "rollback_service") and deployment.kind == "deploy":
        appended = rollback.start_rollback(
            tx, deployment, at=at, error=error, only_failed=mode == "rollback_service"
        )
        if appended == 0:
            rollback_done(tx, tx.require_deployment(deployment.id), at=at)
        if appended is not None:
            if appended:
                # After a pause (`resolve --rollback`) the release runs again until the
                # rollback ends: nothing waits on a person any more.
                _release_follows(tx, deployment, ReleaseState.RUNNING, at=at)
            return
    finish_deployment(tx, deployment, DeploymentState.FAILED, at=at, error=error)


def rollback_done(tx: Tx, deployment: Deployment, *, at: datetime) -> None:
    """Every rollback step succeeded: the previous versions run again."""
    back = rollback.restore_inventory(tx, deployment, at=at)
    finish_deployment(
        tx,
        deployment,
        DeploymentState.ROLLED_BACK,
        at=at,
        error=f"{deployment.error}; rolled back: {back}",
    )


def rollback_failed(tx: Tx, deployment: Deployment, *, at: datetime, error: str) -> None:
    """A rollback step failed: the environment is in an unknown state; a person must act."""
    finish_deployment(
        tx,
        deployment,
        DeploymentState.FAILED,
        at=at,
        error=f"{deployment.error}; then the rollback failed: {error}",
    )


def abort(tx: Tx, deployment: Deployment, *, at: datetime, reason: str) -> None:
    """Stop a deployment as a failure (its running steps are stopped), then ``on_failure``."""
    if deployment.abort_reason:
        return
    tx.update_deployment(deployment.id, deployment.state, abort_reason=reason)
    tx.audit(
        at=at,
        actor=SYSTEM_ACTOR,
        action="deployment.aborted",
        object_type="deployment",
        object_id=deployment.id,
        reason=reason,
        data={"environment": deployment.environment, "release": deployment.release_id},
    )
    advance(tx, deployment.id, at=at)
