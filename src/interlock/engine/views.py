"""Read models: what the API and the web UI show, assembled in one snapshot."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from interlock.audit.chain import Checkpoint, Verification, join_spans, verify_rows
from interlock.domain.records import (
    Attempt,
    AuditEvent,
    ConfigVersion,
    Deployment,
    InventoryEntry,
    Node,
    Release,
)
from interlock.domain.states import NodeState
from interlock.engine.configs import Configs
from interlock.engine.core import Engine
from interlock.errors import NotFound
from interlock.storage.audit_spans import verify_in_processes
from interlock.storage.db import sqlite_path


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    nodes: list[Node]
    attempts: dict[int, list[Attempt]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseView:
    release: Release
    deployments: list[DeploymentView]


def release_view(engine: Engine, release_id: int) -> ReleaseView:
    """A release with its deployments, their nodes and attempts."""
    with engine.db.read() as tx:
        release = tx.get_release(release_id)
        if release is None:
            raise NotFound(f"no release {release_id}")
        deployments = sorted(tx.list_deployments(release_id=release_id), key=lambda d: d.id)
        nodes = tx.nodes_of_many([d.id for d in deployments])
        attempts = tx.attempts_of([n.id for n in nodes])
    return ReleaseView(release, _group(deployments, nodes, attempts))


def _group(
    deployments: Sequence[Deployment], nodes: Sequence[Node], attempts: Sequence[Attempt]
) -> list[DeploymentView]:
    by_node: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_node[attempt.node_id].append(attempt)
    by_deployment: dict[int, list[Node]] = defaultdict(list)
    for node in nodes:
        by_deployment[node.deployment_id].append(node)
    return [
        DeploymentView(d, by_deployment[d.id], {n.id: by_node[n.id] for n in by_deployment[d.id]})
        for d in deployments
    ]


def release_revisions(engine: Engine, release_ids: list[int]) -> dict[int, int]:
    """The current revision of each release that exists (what long-polls compare)."""
    with engine.db.read() as tx:
        return tx.release_revisions(release_ids)


def list_releases(
    engine: Engine,
    *,
    states: Sequence[str] | None = None,
    service: str | None = None,
    created_by: str | None = None,
    cursor: int | None = None,
    limit: int = 50,
    services_in: Sequence[str] | None = None,
) -> list[Release]:
    with engine.db.read() as tx:
        found: list[Release] = tx.list_releases(
            states=states,
            service=service,
            created_by=created_by,
            before_id=cursor,
            limit=limit,
            services_in=services_in,
        )
    return found


def release_services(engine: Engine, release_id: int | None) -> list[str]:
    """The services a release touches (for access checks); empty when there is none."""
    if release_id is None:
        return []
    with engine.db.read() as tx:
        release = tx.get_release(release_id, plan=False)
    return [i.service for i in release.items] if release else []


def deployment(engine: Engine, deployment_id: int) -> Deployment:
    """One deployment (a release's or a runbook run) without its steps (for access checks)."""
    with engine.db.read() as tx:
        found: Deployment | None = tx.get_deployment(deployment_id)
    if found is None:
        raise NotFound(f"no deployment {deployment_id}")
    return found


def deployment_view(engine: Engine, deployment_id: int) -> DeploymentView:
    with engine.db.read() as tx:
        deployment = tx.get_deployment(deployment_id)
        if deployment is None:
            raise NotFound(f"no deployment {deployment_id}")
        nodes = tx.nodes_of(deployment_id)
        attempts = tx.attempts_of([n.id for n in nodes])
    return _group([deployment], nodes, attempts)[0]


def runs_started_by(engine: Engine, node_id: int) -> list[DeploymentView]:
    """The runbook runs a pipeline step (``runbook: NAME``) started, with their steps."""
    with engine.db.read() as tx:
        runs = sorted(tx.children_of(node_id), key=lambda d: d.id)
        nodes = tx.nodes_of_many([d.id for d in runs]) if runs else []
        attempts = tx.attempts_of([n.id for n in nodes]) if nodes else []
    return _group(runs, nodes, attempts)


def list_deployments(
    engine: Engine,
    *,
    release_id: int | None = None,
    environment: str | None = None,
    states: Sequence[str] | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> list[Deployment]:
    with engine.db.read() as tx:
        found: list[Deployment] = tx.list_deployments(
            release_id=release_id,
            environment=environment,
            states=states,
            before_id=cursor,
            limit=limit,
        )
    return found


def step(engine: Engine, node_id: int) -> tuple[Node, list[Attempt]]:
    with engine.db.read() as tx:
        node = tx.get_node(node_id)
        if node is None:
            raise NotFound(f"no step {node_id}")
        return node, tx.attempts_of([node_id])


def step_log(
    engine: Engine, node_id: int, attempt: int | None = None, offset: int = 0
) -> tuple[Node, int, str, bool, bool]:
    """(node, attempt number, text from ``offset``, finished, truncated)."""
    with engine.db.read() as tx:
        node = tx.get_node(node_id)
        if node is None:
            raise NotFound(f"no step {node_id}")
        number = attempt if attempt is not None else node.attempt
        attempts = {a.attempt: a for a in tx.attempts_of([node_id])}
        if number not in attempts:
            if number == 0:
                return node, 0, "", node.finished_at is not None, False
            raise NotFound(f"step {node_id} has no attempt {number}")
        text = tx.attempt_log(node_id, number, offset) or ""
        found = attempts[number]
    return node, number, text, found.finished_at is not None, found.log_truncated


def status(engine: Engine, configs: Configs) -> tuple[list[str], list[str], list[InventoryEntry]]:
    """(environments in promotion order, services, what runs where)."""
    active = None
    try:
        active = configs.active()
    except NotFound:
        pass
    with engine.db.read() as tx:
        entries: list[InventoryEntry] = tx.all_inventory()
    envs = [e.name for e in active.config.environments] if active else []
    services = sorted(active.config.services) if active else []
    for entry in entries:
        if entry.environment not in envs:
            envs.append(entry.environment)
        if entry.service not in services:
            services.append(entry.service)
    return envs, services, entries


def audit_events(
    engine: Engine,
    *,
    after: int | None = None,
    before: int | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    actions: Sequence[str] | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[AuditEvent]:
    with engine.db.read() as tx:
        found: list[AuditEvent] = tx.list_audit(
            after=after,
            before=before,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            actions=actions,
            limit=limit,
            newest_first=newest_first,
        )
    return found


# From this many events on, `audit verify` splits the log over processes (one a core).
AUDIT_SPANS_FROM = 200_000


def audit_verify(
    engine: Engine, checkpoints: Sequence[Checkpoint] = (), *, processes: int | None = None
) -> Verification:
    """Walk the whole chain (see audit/chain.py).

    A large log on a machine with several cores is verified in stretches, one
    process each (storage/audit_spans.py), and joined: the same answer as one
    pass. ``processes`` forces how many (1: one pass in this process). The
    stretches end at the last event of this transaction's snapshot, read with
    the head record, so events written meanwhile are left out of both alike.
    """
    db = engine.db
    with db.read() as tx:
        head = tx.audit_head()
        top = tx.last_audit_seq()
        if processes is None:
            processes = min(os.cpu_count() or 1, 8) if top >= AUDIT_SPANS_FROM else 1
        if processes <= 1 or sqlite_path(db.url) is None and db.dialect == "sqlite":
            return verify_rows(tx.stored_event_rows(), head=head, checkpoints=checkpoints)
    spans = verify_in_processes(db.url, top, processes, checkpoints)
    if spans is None:  # a stretch failed (logged): one pass, as before
        with db.read() as tx:
            return verify_rows(
                tx.stored_event_rows(), head=tx.audit_head(), checkpoints=checkpoints
            )
    return join_spans(spans, head=head, checkpoints=checkpoints)


def audit_checkpoint(engine: Engine) -> Checkpoint | None:
    with engine.db.read() as tx:
        head: Checkpoint | None = tx.audit_head()
    return head


def config_version(engine: Engine, version: int) -> ConfigVersion:
    with engine.db.read() as tx:
        found: ConfigVersion | None = tx.get_config(version)
    if found is None:
        raise NotFound(f"no config version {version}")
    return found


def observations(engine: Engine) -> dict[tuple[str, str], Any]:
    """What was reported running where, by (service, environment)."""
    with engine.db.read() as tx:
        return {(o.service, o.environment): o for o in tx.all_observations()}


def service_states(nodes: Sequence[Node]) -> dict[str, str]:
    """Where each service of a deployment stands: what a person wants from a train's end."""
    done = {NodeState.SUCCEEDED, NodeState.SKIPPED}
    out: dict[str, str] = {}
    for service in sorted({n.service for n in nodes if n.service}):
        deploy = [n for n in nodes if n.service == service and n.phase == "deploy"]
        back = [n for n in nodes if n.service == service and n.phase == "rollback"]
        if back:
            if any(n.state is NodeState.FAILED for n in back):
                out[service] = "rollback_failed"
            elif all(n.state in done for n in back):
                out[service] = "rolled_back"
            else:
                out[service] = "rolling_back"
        elif deploy and all(n.state in done for n in deploy):
            out[service] = "deployed"
        elif any(n.state is NodeState.FAILED for n in deploy):
            out[service] = "failed"
        elif any(n.state is NodeState.NEEDS_ATTENTION for n in deploy):
            out[service] = "needs_attention"
        elif any(n.state is NodeState.CANCELLED for n in deploy):
            out[service] = "cancelled"
        elif all(n.attempt == 0 and n.state is not NodeState.RUNNING for n in deploy):
            out[service] = "not_started"
        else:
            out[service] = "deploying"
    return out


def step_estimates(
    engine: Engine, services: Sequence[str]
) -> tuple[dict[str, dict[str, float]], int]:
    """Median duration of each step per environment from recent runs, and how many runs."""
    with engine.db.read() as tx:
        rows = tx.recent_durations(services)
    samples: dict[tuple[str, str], list[float]] = {}
    for environment, key, seconds in rows:
        samples.setdefault((environment, key), []).append(seconds)
    out: dict[str, dict[str, float]] = {}
    for (environment, key), values in samples.items():
        out.setdefault(environment, {})[key] = median(values[:20])
    return out, len(rows)
