"""``interlock rollback``: put back the last good version of one service (or a named one).

A command: it checks what may go back, plans a release of kind ``rollback``
with the service's rollback steps, and stores it; the lifecycle runs it like
any release. Kept apart from :mod:`interlock.engine.rollback`, the automatic
rollback policy of a failed deployment.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from interlock.domain.names import check_version
from interlock.domain.plan import (
    EnvironmentPlan,
    EnvironmentSettings,
    NodePlan,
    ReleaseItem,
    ReleasePlan,
)
from interlock.domain.records import InventoryEntry, Item, Release
from interlock.domain.templating import PLACEHOLDER
from interlock.engine.access import Access
from interlock.engine.artifacts import pin
from interlock.engine.configs import ActiveConfig
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.releases import store_release
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.spec.model import Environment
from interlock.spec.planner import gate_node, step_node
from interlock.storage.tx import Tx


@dataclass(frozen=True)
class Target:
    """The version a service goes back to, and what runs there now."""

    current: InventoryEntry
    version: str
    digest: str | None


def rollback_service(
    engine: Engine,
    access: Access,
    who: Principal,
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
        target = find_target(tx, service, environment, to_version)
    plan = rollback_plan(active, env_spec, service, target)
    if dry_run:
        return dry_run_view(plan, service, environment, target, reason)

    def work(tx: Tx) -> Release:
        items = pin(
            tx, [Item(service, target.version, target.digest)], required=env_spec.require_artifacts
        )
        return store_release(
            tx, plan, items, actor=who.name, reason=reason.strip(), at=now, kind="rollback"
        )

    release = engine.db.run(work)
    return {
        "dry_run": False,
        "release": release.id,
        "service": service,
        "environment": environment,
        "from": target.current.version,
        "to": target.version,
    }


def find_target(tx: Tx, service: str, environment: str, to_version: str | None) -> Target:
    """The version ``service`` goes back to in ``environment``; :class:`Conflict` if none may."""
    current = tx.inventory_entry(service, environment)
    if current is None:
        raise Conflict(f"nothing of {service} runs in {environment}; nothing to roll back")
    version, digest = None, None
    if to_version is not None:
        check_version(to_version, "to")
        if to_version == current.version:
            raise Conflict(f"{service}@{to_version} already runs in {environment}")
    for deployment, found, found_digest in tx.history(service, environment, limit=500):
        if deployment.state.value != "succeeded" or found == current.version:
            continue
        if to_version is None or found == to_version:
            version, digest = found, found_digest
            break
    if version is None and to_version is not None:
        raise Conflict(
            f"{service}@{to_version} never ran successfully in {environment}; a rollback "
            "goes back to a version that did (release anything else)"
        )
    if version is None:
        raise Conflict(
            f"no earlier version of {service} ran in {environment}; name one with --to VERSION"
        )
    artifact = tx.get_artifact(service, version)
    if artifact is not None and artifact.blocked():
        raise Conflict(f"{service}@{version} is blocked: {artifact.block_reason}")
    if artifact is not None and artifact.digest:
        digest = artifact.digest
    if version == current.version:
        raise Conflict(f"{service}@{version} already runs in {environment}")
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
    return Target(current, version, digest)


def rollback_plan(
    active: ActiveConfig, env_spec: Environment, service: str, target: Target
) -> ReleasePlan:
    """A one-environment plan: the gates the environment keeps for rollbacks, then the steps."""
    config = active.config
    environment = env_spec.name
    steps: list[NodePlan] = []
    gates: list[NodePlan] = []
    for gate in env_spec.gates.before:
        if (gate.kind == "approval" and env_spec.rollback_approvals) or (
            gate.kind == "window" and not env_spec.rollback_during_freeze
        ):
            gates.append(gate_node(gate, "before", (), active.base_dir, config, environment))
    chain: tuple[str, ...] = tuple(g.key for g in gates)
    source = config.services[service]
    for step in source.rollback if source.rollback is not None else source.deploy:
        if step.environments is not None and environment not in step.environments:
            continue
        node = step_node(
            config, service, step, active.base_dir, chain, "rollback/", environment=environment
        )
        steps.append(node)
        chain = (node.key,)
    after = [
        gate_node(g, "after", chain, active.base_dir, config, environment)
        for g in env_spec.gates.after
    ]
    settings = EnvironmentSettings(
        production=env_spec.production,
        concurrency=env_spec.concurrency,
        previous=None,
        on_failure="fail",
        deadline=env_spec.deadline,
        parallel=env_spec.parallel,
        services=1,
        depends={service: []},
    )
    return ReleasePlan(
        config_version=active.version,
        items=(ReleaseItem(service, target.version, target.digest),),
        environments=(EnvironmentPlan(environment, 0, tuple(gates + steps + after), (), settings),),
    )


def dry_run_view(
    plan: ReleasePlan, service: str, environment: str, target: Target, reason: str
) -> dict[str, Any]:
    """What a rollback would run, each step's command with its values filled in."""
    values = {
        "service": service,
        "version": target.version,
        "digest": target.digest or "",
        "environment": environment,
        "previous_version": target.current.version,
        "previous_digest": target.current.digest or "",
        "reason": reason,
    }

    def shown(node: NodePlan) -> str:
        if node.executor == "shell":
            return "$ " + PLACEHOLDER.sub(
                lambda m: shlex.quote(values[m.group(1)]) if m.group(1) in values else m.group(0),
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
        "from": target.current.version,
        "to": target.version,
        "digest": target.digest,
        "steps": [
            {"key": n.key, "executor": n.executor, "runs": shown(n)}
            for n in plan.environments[0].nodes
        ],
    }
