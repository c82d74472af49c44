"""Runbooks as code: named procedures with automated steps and signed-off manual ones.

A run is durable like a release (it is a deployment of kind ``runbook``): it
survives restarts, every step is audited, and it can be attached to an
incident. A manual step waits until someone in its role or team signs it off;
a pipeline step ``runbook: NAME`` starts a run and waits for it.
"""

from __future__ import annotations

from datetime import datetime

from interlock.domain.plan import EnvironmentSettings, NodePlan
from interlock.domain.records import Deployment, Node, Release
from interlock.domain.states import DeploymentState, NodeState
from interlock.engine.access import Access
from interlock.engine.core import Engine
from interlock.engine.gate_outcome import apply_gate_decision
from interlock.engine.graph import promote
from interlock.engine.identity import Principal
from interlock.engine.progress import advance
from interlock.engine.run_visibility import may_read_run
from interlock.engine.transitions import move_deployment
from interlock.errors import Conflict, Forbidden, InvalidInput, NotFound
from interlock.gates import Decision
from interlock.spec.model import Runbook
from interlock.spec.planner import step_node
from interlock.storage.tx import Tx


def _plans(engine: Engine, name: str) -> tuple[list[NodePlan], Runbook]:
    active = engine.configs.active()
    runbook = active.config.runbooks.get(name)
    if runbook is None:
        known = ", ".join(sorted(active.config.runbooks)) or "none"
        raise NotFound(f"no runbook named {name!r} (known: {known})")
    plans: list[NodePlan] = []
    previous: tuple[str, ...] = ()
    for step in runbook.steps:
        node = step_node(active.config, None, step, active.base_dir, previous)
        plans.append(node)
        previous = (node.key,)
    return plans, runbook


def _params(runbook: Runbook, given: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(given) - set(runbook.params))
    if unknown:
        raise InvalidInput(
            f"unknown parameter {unknown[0]!r}; this runbook takes: "
            + (", ".join(sorted(runbook.params)) or "none"),
            field="params",
        )
    values = {}
    for key, spec in runbook.params.items():
        if key in given and spec.required and not str(given[key]).strip():
            raise InvalidInput(
                f"parameter {key!r} is required: give it a value, not an empty one",
                field=f"params.{key}",
            )
        if key in given:
            values[key] = str(given[key])
        elif spec.default is not None:
            values[key] = spec.default
        elif spec.required:
            raise InvalidInput(
                f"parameter {key!r} is required"
                + (f": {spec.description}" if spec.description else ""),
                field=f"params.{key}",
            )
    return values


def start_run(
    tx: Tx,
    engine: Engine,
    *,
    name: str,
    params: dict[str, str],
    actor: str,
    environment: str | None,
    incident_id: int | None,
    reason: str | None,
    at: datetime,
    parent_node_id: int | None = None,
) -> int:
    """Create and start a run inside the caller's transaction; return its id."""
    plans, runbook = _plans(engine, name)
    values = _params(runbook, params)
    if incident_id is not None and tx.get_incident(incident_id) is None:
        raise NotFound(f"no incident {incident_id}")
    run_id = int(
        tx.insert_deployment(
            release_id=None,
            kind="runbook",
            environment=environment,
            env_index=0,
            state=DeploymentState.QUEUED,
            created_by=actor,
            at=at,
            runbook=name,
            params=values,
            incident_id=incident_id,
            parent_node_id=parent_node_id,
            settings=EnvironmentSettings(on_failure="fail").to_json(),
        )
    )
    tx.audit(
        at=at,
        actor=actor,
        action="runbook.started",
        object_type="runbook_run",
        object_id=run_id,
        reason=reason,
        data={
            "runbook": name,
            "params": values,
            "environment": environment,
            "incident": incident_id,
            "parent_step": parent_node_id,
            "steps": [p.key for p in plans],
        },
    )
    run = tx.require_deployment(run_id)
    move_deployment(tx, run, DeploymentState.RUNNING, at=at, actor=actor, started_at=at)
    tx.insert_nodes(run_id, plans, at)
    promote(tx, tx.require_deployment(run_id), at=at)
    advance(tx, run_id, at=at)
    return run_id


def run(
    engine: Engine,
    access: Access,
    who: Principal,
    *,
    name: str,
    params: dict[str, str],
    environment: str | None = None,
    incident_id: int | None = None,
    reason: str | None = None,
) -> Deployment:
    """Start a run of runbook ``name`` (permission ``runbook.run`` in its environment)."""
    if environment is not None:
        engine.configs.known(environment)
    access.require(who, "runbook.run", environment=environment)
    now = engine.clock.now()

    def work(tx: Tx) -> Deployment:
        if incident_id is not None:
            incident = tx.get_incident(incident_id)
            if incident is None or (
                incident.service is not None and not access.can_read(who, [incident.service])
            ):
                raise NotFound(f"no incident {incident_id}", field="incident")
        run_id = start_run(
            tx,
            engine,
            name=name,
            params=params,
            actor=who.name,
            environment=environment,
            incident_id=incident_id,
            reason=reason,
            at=now,
        )
        return tx.require_deployment(run_id)

    result: Deployment = engine.db.run(work)
    return result


def sign(
    engine: Engine, access: Access, who: Principal, *, run_id: int, step: str, comment: str | None
) -> Node:
    """Sign off a manual step: only someone in its role or team, with ``runbook.sign``.

    The run (or a release's deployment, for a manual step of a pipeline) is
    looked for only among those ``who`` may see, so a run that does not exist
    and one hidden from them answer alike (404), whatever their permissions;
    the permission is checked before the step is looked for, so step names are
    not probed either.
    """
    now = engine.clock.now()
    config = engine.configs.active().config

    def work(tx: Tx) -> Node:
        run_ = tx.get_deployment(run_id)
        services = None
        if run_ is not None and run_.release_id is not None:
            services = [i.service for i in tx.require_release(run_.release_id, plan=False).items]
        if run_ is None or not (
            access.can_read(who, services)
            if services is not None
            else may_read_run(tx, access, who, run_)
        ):
            raise NotFound(f"no run {run_id}")
        access.require(who, "runbook.sign", environment=run_.environment, services=services)
        node = next((n for n in tx.nodes_of(run_id) if step in (n.name, n.key)), None)
        if node is None or node.executor != "manual":
            raise NotFound(f"run {run_id} has no manual step {step!r}")
        manual = node.spec["manual"]
        group_kind = "role" if manual.get("role") else "team"
        group = manual.get("role") or manual.get("team")
        declared = (config.roles if group_kind == "role" else config.teams).get(group, [])
        members = set(declared) | tx.members(group_kind, group)
        if who.name not in members:
            raise Forbidden(
                f"{who.name} is not in {group_kind} {group}, which signs off {node.name!r}"
            )
        node = tx.require_node(node.id, lock=True)
        if node.state is not NodeState.WAITING:
            raise Conflict(f"step {node.name!r} is {node.state.value}, not waiting for a sign-off")
        tx.add_signoff(node.id, who.name, comment, now)
        tx.audit(
            at=now,
            actor=who.name,
            action="step.signed_off",
            object_type="step",
            object_id=node.id,
            reason=comment,
            data={"run": run_id, "step": node.name, group_kind: group},
        )
        apply_gate_decision(tx, engine, node, decide_manual(tx, node), now, actor=who.name)
        return tx.require_node(node.id)

    result: Node = engine.db.run(work)
    return result


def decide_manual(tx: Tx, node: Node) -> Decision:
    manual = node.spec.get("manual", {})
    who = manual.get("role") or manual.get("team")
    signed = tx.signoffs_of(node.id)
    if signed:
        first = signed[0]
        return Decision(
            "pass",
            f"signed off by {first.signer}" + (f": {first.comment}" if first.comment else ""),
            detail={
                "signed_by": first.signer,
                "comment": first.comment,
                "at": first.signed_at.isoformat(),
            },
        )
    return Decision(
        "wait",
        f"waiting for {who} to sign off: {manual.get('instructions', '')}",
        detail={"instructions": manual.get("instructions"), "signer": who},
    )


def decide_runbook_step(
    tx: Tx,
    engine: Engine,
    node: Node,
    deployment: Deployment,
    release: Release | None,
    now: datetime,
) -> Decision:
    """A pipeline step that runs a runbook: start it once, then follow it to its end."""
    children = tx.children_of(node.id)
    if not children:
        params = {k: str(v) for k, v in (node.spec.get("with") or {}).items()}
        child_id = start_run(
            tx,
            engine,
            name=node.spec["runbook"],
            params=params,
            actor="interlock",
            environment=deployment.environment,
            incident_id=deployment.incident_id,
            reason=f"step {node.key} of deployment {deployment.id}",
            at=now,
            parent_node_id=node.id,
        )
        children = [tx.require_deployment(child_id)]
    child = children[-1]
    detail = {"run": child.id, "state": child.state.value}
    if child.state is DeploymentState.SUCCEEDED:
        return Decision("pass", f"runbook run {child.id} succeeded", detail=detail)
    if child.finished_at is not None:
        return Decision(
            "fail", f"runbook run {child.id} {child.state.value}: {child.error}", detail=detail
        )
    return Decision("wait", f"waiting for runbook run {child.id}", detail=detail)


def runs(engine: Engine, *, limit: int = 50, before: int | None = None) -> list[Deployment]:
    """Runbook runs, newest first (started before the run ``before``, if given)."""
    with engine.db.read() as tx:
        found: list[Deployment] = tx.list_deployments(
            kinds=["runbook"], limit=limit, before_id=before
        )
    return found
