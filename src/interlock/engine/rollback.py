"""When a deployment fails: roll back, pause or fail, as its environment says.

Automatic rollback runs each affected service's rollback steps (by default
its deploy steps) with the version that ran there before, in reverse
dependency order, inside the same deployment; it ends ``rolled_back`` with the
inventory restored. A rollback that fails ends ``failed``: a person must act.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from interlock.domain.plan import NodePlan, ReleasePlan
from interlock.domain.records import Deployment, InventoryEntry
from interlock.domain.states import DeploymentState, NodeState
from interlock.engine.core import SYSTEM_ACTOR
from interlock.engine.progress import finish_deployment, promote
from interlock.engine.transitions import move_deployment

STARTED = frozenset(
    {
        NodeState.RUNNING,
        NodeState.SUCCEEDED,
        NodeState.FAILED,
        NodeState.NEEDS_ATTENTION,
        NodeState.CANCELLED,
    }
)


def deployment_failed(tx: Any, deployment: Deployment, *, at: datetime, error: str) -> None:
    """Nothing runs any more and something failed: follow ``on_failure``."""
    from interlock.engine.incidents import open_for_failure

    open_for_failure(tx, deployment, at=at, error=error)
    mode = (deployment.settings or {}).get("on_failure", "fail")
    if mode in ("rollback", "rollback_service") and deployment.kind == "deploy":
        if start_rollback(
            tx, deployment, at=at, error=error, only_failed=mode == "rollback_service"
        ):
            return
    finish_deployment(tx, deployment, DeploymentState.FAILED, at=at, error=error)


def start_rollback(
    tx: Any,
    deployment: Deployment,
    *,
    at: datetime,
    error: str,
    only_failed: bool = False,
    actor: str = SYSTEM_ACTOR,
) -> bool:
    """Append the rollback steps of the affected services; ``False`` if there are none."""
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
        return False
    release = tx.get_release(deployment.release_id)
    env = ReleasePlan.from_json(release.plan).environment(deployment.environment or "")
    depends: dict[str, list[str]] = env.settings.get("depends", {})
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
    promote(tx, tx.get_deployment(deployment.id), at=at)
    if not plans:
        rollback_done(tx, tx.get_deployment(deployment.id), at=at)
    return True


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


def rollback_done(tx: Any, deployment: Deployment, *, at: datetime) -> None:
    """Every rollback step succeeded: the previous versions run again."""
    services = sorted(
        {n.service for n in tx.nodes_of(deployment.id) if n.phase == "rollback" and n.service}
    )
    release = tx.get_release(deployment.release_id, plan=False)
    for service in services:
        previous = deployment.previous[service]
        before = tx.set_inventory(
            InventoryEntry(
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
        )
        tx.audit(
            at=at,
            actor=SYSTEM_ACTOR,
            action="service.rolled_back",
            object_type="service",
            object_id=f"{service}@{deployment.environment}",
            before={"version": before.version, "digest": before.digest} if before else None,
            after={"version": previous["version"], "digest": previous.get("digest")},
            data={"deployment": deployment.id},
        )
    back = ", ".join(f"{s} is back on {deployment.previous[s]['version']}" for s in services)
    finish_deployment(
        tx,
        deployment,
        DeploymentState.ROLLED_BACK,
        at=at,
        error=f"{deployment.error}; rolled back: {back}",
    )


def rollback_failed(tx: Any, deployment: Deployment, *, at: datetime, error: str) -> None:
    """A rollback step failed: the environment is in an unknown state; a person must act."""
    finish_deployment(
        tx,
        deployment,
        DeploymentState.FAILED,
        at=at,
        error=f"{deployment.error}; then the rollback failed: {error}",
    )


def rollback_service(
    engine: Any,
    access: Any,
    who: Any,
    *,
    service: str,
    environment: str,
    to_version: str | None,
    reason: str,
    dry_run: bool = False,
) -> dict[str, Any]:
    """``interlock rollback``: put back the last good version (or a named one).

    It is a release of its own (kind ``rollback``) with one deployment running
    the service's rollback steps with the target version. Windows and freezes
    do not hold it back and approvals are not asked, unless the environment
    says otherwise. ``dry_run`` returns exactly what would run, and stores nothing.
    """
    from interlock.domain.names import check_version
    from interlock.domain.plan import EnvironmentPlan, ReleaseItem, ReleasePlan
    from interlock.domain.records import Item
    from interlock.engine.artifacts import pin
    from interlock.engine.releases import store_release
    from interlock.errors import Conflict, InvalidInput, NotFound
    from interlock.spec.planner import _gate_node, _step_node

    if not reason.strip():
        raise InvalidInput("a rollback needs a reason", field="reason")
    access.require(who, "rollback", environment=environment, services=[service])
    active = engine.configs.active()
    config = active.config
    if service not in config.services:
        raise NotFound(f"no service named {service!r}")
    env_spec = next((e for e in config.environments if e.name == environment), None)
    if env_spec is None:
        raise NotFound(f"no environment named {environment!r}")
    now = engine.clock.now()

    with engine.db.read() as tx:
        current = tx.inventory_entry(service, environment)
        if current is None:
            raise Conflict(f"nothing of {service} runs in {environment}; nothing to roll back")
        target, digest = None, None
        if to_version is not None:
            check_version(to_version, "to")
            if to_version == current.version:
                raise Conflict(f"{service}@{to_version} already runs in {environment}")
        for deployment, version, found_digest in tx.history(service, environment, limit=500):
            if deployment.state.value != "succeeded" or version == current.version:
                continue
            if to_version is None or version == to_version:
                target, digest = version, found_digest
                break
        if target is None and to_version is not None:
            raise Conflict(
                f"{service}@{to_version} never ran successfully in {environment}; a rollback "
                "goes back to a version that did (release anything else)"
            )
        if target is None:
            raise Conflict(
                f"no earlier version of {service} ran in {environment}; name one with --to VERSION"
            )
        artifact = tx.get_artifact(service, target)
        if artifact is not None and artifact.blocked():
            raise Conflict(f"{service}@{target} is blocked: {artifact.block_reason}")
        if artifact is not None and artifact.digest:
            digest = artifact.digest
        if target == current.version:
            raise Conflict(f"{service}@{target} already runs in {environment}")
        busy = [
            d
            for d in tx.active_deployments_of(service)
            if d.environment == environment and d.started_at is not None
        ]
        if busy:
            raise Conflict(
                f"deployment {busy[0].id} of {service} is still active in {environment} "
                f"({busy[0].state.value}); resolve it (`interlock resolve STEP --rollback`) or "
                "cancel its release first"
            )
    steps: list[NodePlan] = []
    gates: list[NodePlan] = []
    for gate in env_spec.gates.before:
        if (gate.kind == "approval" and env_spec.rollback_approvals) or (
            gate.kind == "window" and not env_spec.rollback_during_freeze
        ):
            gates.append(_gate_node(gate, "before", (), active.base_dir))
    chain: tuple[str, ...] = tuple(g.key for g in gates)
    source = config.services[service]
    for step in source.rollback if source.rollback is not None else source.deploy:
        if step.environments is not None and environment not in step.environments:
            continue
        node = _step_node(config, service, step, active.base_dir, chain, "rollback/")
        steps.append(node)
        chain = (node.key,)
    after = [_gate_node(g, "after", chain, active.base_dir) for g in env_spec.gates.after]
    settings = {
        "production": env_spec.production,
        "concurrency": env_spec.concurrency,
        "previous": None,
        "on_failure": "fail",
        "deadline": env_spec.deadline,
        "parallel": env_spec.parallel,
        "services": 1,
        "depends": {service: []},
    }
    plan = ReleasePlan(
        config_version=active.version,
        items=(ReleaseItem(service, target, digest),),
        environments=(EnvironmentPlan(environment, 0, tuple(gates + steps + after), (), settings),),
    )
    if dry_run:
        from interlock.domain.templating import PLACEHOLDER

        values = {
            "service": service,
            "version": target,
            "digest": digest or "",
            "environment": environment,
            "previous_version": current.version,
            "previous_digest": current.digest or "",
            "reason": reason,
        }

        def shown(node: NodePlan) -> str:
            import shlex

            if node.executor == "shell":
                return "$ " + PLACEHOLDER.sub(
                    lambda m: (
                        shlex.quote(values[m.group(1)]) if m.group(1) in values else m.group(0)
                    ),
                    node.spec["run"],
                )
            if node.executor == "http":
                call = node.spec["http"]
                return f"{call.get('method', 'POST')} " + PLACEHOLDER.sub(
                    lambda m: values.get(m.group(1), m.group(0)), call["url"]
                )
            return f"{node.kind} {node.executor}"

        return {
            "dry_run": True,
            "service": service,
            "environment": environment,
            "from": current.version,
            "to": target,
            "digest": digest,
            "steps": [
                {"key": n.key, "executor": n.executor, "runs": shown(n)}
                for n in plan.environments[0].nodes
            ],
        }

    def work(tx: Any) -> Any:
        items = pin(tx, [Item(service, target, digest)], required=env_spec.require_artifacts)
        return store_release(
            tx,
            plan,
            items,
            actor=who.name,
            reason=reason.strip(),
            at=now,
            kind="rollback",
        )

    release = engine.db.run(work)
    return {
        "dry_run": False,
        "release": release.id,
        "service": service,
        "environment": environment,
        "from": current.version,
        "to": target,
    }


def abort(tx: Any, deployment: Deployment, *, at: datetime, reason: str) -> None:
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
    from interlock.engine.progress import advance

    advance(tx, deployment.id, at=at)


def enforce_deadlines(engine: Any) -> None:
    """Scheduler task: abort deployments that outran their environment's ``deadline``.

    The clock starts with the first deploy step: time spent waiting for
    approvals or a deploy window does not count.
    """
    from datetime import timedelta

    now = engine.clock.now()
    late = []
    with engine.db.read() as tx:
        for deployment in tx.running_with_deadline():
            started = tx.first_step_started(deployment.id)
            limit = timedelta(seconds=float(deployment.settings["deadline"]))
            if started is not None and started + limit <= now:
                late.append(deployment)
    for deployment in late:
        limit_s = float(deployment.settings["deadline"])

        def work(tx: Any, deployment_id: int = deployment.id, limit: float = limit_s) -> None:
            current = tx.get_deployment(deployment_id, lock=True)
            if current is not None and current.finished_at is None:
                abort(
                    tx,
                    current,
                    at=now,
                    reason=f"its deadline of {limit:g}s passed before it finished",
                )

        engine.db.run(work)
