"""Incidents: failures in an environment, linked to the deployment that caused them.

Opened automatically when a deployment fails in an environment flagged
``production: true`` (a failed step or a failed verification), or by hand.
Resolved by hand, or by a rollback or a fixing deployment of that service in
that environment that succeeds; the opened and resolved times give time to
restore.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from interlock.domain.records import Deployment, Incident, Release
from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.errors import Conflict, InvalidInput, NotFound
from interlock.storage.tx import Tx


def open_for_failure(tx: Tx, deployment: Deployment, *, at: datetime, error: str) -> None:
    environment = deployment.environment
    if not deployment.rules.production or deployment.release_id is None or environment is None:
        return
    if tx.first_step_started(deployment.id) is None:
        return  # nothing changed in the environment (it stopped at a gate): no incident
    if any(
        i.deployment_id == deployment.id
        for i in tx.list_incidents(state="open", environment=deployment.environment, limit=None)
    ):
        return
    release = tx.require_release_of(deployment, plan=False)
    failed = [n.service for n in tx.nodes_in_state(deployment.id, NodeState.FAILED, 5) if n.service]
    service = failed[0] if failed else (release.items[0].service if release.items else None)
    what = ", ".join(f"{i.service}@{i.version}" for i in release.items)
    incident = tx.open_incident(
        service=service,
        environment=environment,
        summary=f"release {release.id} ({what}) failed in {deployment.environment}: {error}",
        at=at,
        by=SYSTEM_ACTOR,
        deployment_id=deployment.id,
        release_id=release.id,
    )
    tx.audit(
        at=at,
        actor=SYSTEM_ACTOR,
        action="incident.opened",
        object_type="incident",
        object_id=incident.id,
        reason=error,
        data={
            "service": service,
            "environment": deployment.environment,
            "deployment": deployment.id,
            "release": release.id,
            "automatic": True,
        },
    )


def resolve_by_deployment(
    tx: Tx, deployment: Deployment, release: Release, service: str, *, at: datetime
) -> None:
    """A deployment of ``service`` succeeded here: it resolves the incidents open for it."""
    environment = deployment.environment
    found = (
        tx.open_incidents_of(service, environment)
        if environment
        else tx.list_incidents(state="open", service=service, limit=None)
    )
    for incident in found:
        if incident.deployment_id == deployment.id:
            continue  # the deployment that caused it cannot be its fix
        resolution = "rollback" if release.kind == "rollback" else "fix"
        tx.resolve_incident(
            incident.id,
            resolved_at=at,
            resolved_by=SYSTEM_ACTOR,
            resolution=resolution,
            resolved_by_deployment=deployment.id,
            resolution_note=f"{service}@{_version(release, service)} deployed "
            f"by release {release.id}",
        )
        tx.audit(
            at=at,
            actor=SYSTEM_ACTOR,
            action="incident.resolved",
            object_type="incident",
            object_id=incident.id,
            reason=f"resolved by a {resolution}",
            data={"deployment": deployment.id, "release": release.id},
        )


def _version(release: Release, service: str) -> str:
    return next((i.version for i in release.items if i.service == service), "?")


def open_incident(
    engine: Engine,
    *,
    actor: str,
    service: str | None,
    environment: str,
    summary: str,
    deployment_id: int | None = None,
    authorize: Callable[[str | None], None] | None = None,
) -> Incident:
    """Open an incident by hand, linked to its deployment (given, or the latest that finished
    there before now, having reached the environment: see ``latest_deployment_of``).

    A deployment given must have run in ``environment``. Without ``service``,
    the incident is about the one service the deployment's release carries; a
    release of several services needs ``service`` to say which. ``authorize``
    is called with the service the incident ends up about, before anything is
    written (it raises to refuse).
    """
    if not summary.strip():
        raise InvalidInput("an incident needs a summary", field="summary")
    engine.configs.known(environment)
    now = engine.clock.now()

    def work(tx: Tx) -> Incident:
        about = service
        linked = deployment_id
        if linked is None and about is not None:
            linked = tx.latest_deployment_of(about, environment, now)
        release_id = None
        if linked is not None:
            found = tx.get_deployment(linked)
            if found is None:
                raise NotFound(
                    f"no deployment {linked}; give the id of a deployment in {environment} "
                    "(`interlock release show RELEASE` lists them)",
                    field="deployment",
                )
            if found.environment != environment:
                raise InvalidInput(
                    f"deployment {linked} ran in {found.environment or 'no environment'}, "
                    f"not in {environment}; give a deployment of {environment}, or open the "
                    f"incident in {found.environment or 'that environment'}",
                    field="deployment",
                )
            release_id = found.release_id
            if release_id is not None:
                release = tx.require_release(release_id, plan=False)
                if about is None:
                    about = _service_of(release, linked)
                elif about not in {i.service for i in release.items}:
                    # linking it elsewhere would count a failure against another release
                    raise InvalidInput(
                        f"deployment {linked} did not deploy {about}; give a deployment "
                        f"of {about} in {environment}",
                        field="deployment",
                    )
        if authorize is not None:
            authorize(about)
        incident: Incident = tx.open_incident(
            service=about,
            environment=environment,
            summary=summary.strip(),
            at=now,
            by=actor,
            deployment_id=linked,
            release_id=release_id,
        )
        tx.audit(
            at=now,
            actor=actor,
            action="incident.opened",
            object_type="incident",
            object_id=incident.id,
            reason=summary.strip(),
            data={"service": about, "environment": environment, "deployment": linked},
        )
        return incident

    result: Incident = engine.db.run(work)
    return result


def _service_of(release: Release, deployment_id: int) -> str | None:
    """The one service ``release`` carries; several are ambiguous, so the caller must choose."""
    services = sorted({i.service for i in release.items})
    if len(services) > 1:
        raise InvalidInput(
            f"deployment {deployment_id} deployed {', '.join(services)}; say which service "
            "the incident is about with --service",
            field="service",
        )
    return services[0] if services else None


def resolve_incident(engine: Engine, incident_id: int, *, actor: str, note: str) -> Incident:
    if not note.strip():
        raise InvalidInput("say how it was resolved", field="note")
    now = engine.clock.now()

    def work(tx: Tx) -> Incident:
        found = tx.get_incident(incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id}")
        if not tx.resolve_incident(
            incident_id,
            resolved_at=now,
            resolved_by=actor,
            resolution="manual",
            resolution_note=note.strip(),
        ):
            raise Conflict(f"incident {incident_id} is already resolved")
        tx.audit(
            at=now,
            actor=actor,
            action="incident.resolved",
            object_type="incident",
            object_id=incident_id,
            reason=note.strip(),
            data={"resolution": "manual"},
        )
        resolved = tx.require_incident(incident_id)
        return resolved

    result: Incident = engine.db.run(work)
    return result


def incidents(
    engine: Engine,
    *,
    state: str | None = None,
    service: str | None = None,
    environment: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[Incident]:
    """Incidents, newest first (older than the incident ``before``, if given)."""
    with engine.db.read() as tx:
        found: list[Incident] = tx.list_incidents(
            state=state, service=service, environment=environment, limit=limit, before_id=before
        )
    return found


def incident(engine: Engine, incident_id: int) -> tuple[Incident, list[Any]]:
    """An incident and the runbook runs attached to it."""
    with engine.db.read() as tx:
        found = tx.get_incident(incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id}")
        runs = [
            d
            for d in tx.list_deployments(kinds=["runbook"], limit=500)
            if d.incident_id == incident_id
        ]
    return found, runs
