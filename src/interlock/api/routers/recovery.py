"""Recovery: rollbacks, decisions on steps that need attention, incidents."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import Page
from interlock.api.text import Line, Text
from interlock.domain.bounds import RecordId
from interlock.engine import incidents
from interlock.engine.resolve import resolve
from interlock.engine.rollback_service import rollback_service
from interlock.errors import NotFound

router = APIRouter(tags=["recovery"])


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Line
    environment: Line
    to: Line | None = Field(default=None, description="Default: the last good version there.")
    reason: Text = Field(min_length=1, max_length=4000)
    dry_run: bool = Field(default=False, description="Show exactly what would run; do nothing.")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["retry", "skip", "fail", "rollback"]
    reason: Text = Field(min_length=1, max_length=4000)


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Line | None = None
    environment: Line
    summary: Text = Field(min_length=1, max_length=4000)
    deployment: RecordId | None = Field(
        default=None, description="Default: the latest one of that service there before now."
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text = Field(min_length=1, max_length=4000)


@router.post("/rollbacks", status_code=status.HTTP_201_CREATED)
def rollback(body: RollbackIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Roll a service back in an environment: a deployment of its own, audited."""
    return rollback_service(
        app.engine,
        app.access,
        who,
        service=body.service,
        environment=body.environment,
        to_version=body.to,
        reason=body.reason,
        dry_run=body.dry_run,
    )


@router.post("/steps/{step_id}/resolve")
def resolve_step(step_id: Id, body: ResolveIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Decide about a step that needs attention: retry, skip, fail or roll back."""
    node = resolve(
        app.engine, app.access, who, step_id=step_id, action=body.action, reason=body.reason
    )
    return {"id": node.id, "key": node.key, "state": node.state.value}


def _incident(app: Any, who: Any, incident: Any) -> dict[str, Any]:
    if incident.service and not app.access.can_read(who, [incident.service]):
        raise NotFound(f"no incident {incident.id}")
    return dict(incident.__dict__)


def _may_manage(app: Any, who: Any, environment: str, service: str | None) -> None:
    """``incident.manage`` for the incident's service; one about no service needs it for all."""
    if service is None:
        app.access.require_everywhere(who, "incident.manage", environment=environment)
    else:
        app.access.require(who, "incident.manage", environment=environment, services=[service])


@router.post("/incidents", status_code=status.HTTP_201_CREATED)
def open_incident(body: IncidentIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Open an incident by hand, linked to the deployment that caused it."""
    if body.service:
        _may_manage(app, who, body.environment, body.service)
    else:  # what it is about comes from the deployment; refuse early who may manage none
        app.access.require(who, "incident.manage", environment=body.environment)

    def authorize(service: str | None) -> None:
        if service != body.service or service is None:
            # the service taken from the deployment, or none: check what it ends up about
            _may_manage(app, who, body.environment, service)

    found = incidents.open_incident(
        app.engine,
        actor=who.name,
        service=body.service,
        environment=body.environment,
        summary=body.summary,
        deployment_id=body.deployment,
        authorize=authorize,
    )
    return dict(found.__dict__)


@router.get("/incidents", response_model=Page[dict[str, Any]])
def list_incidents(
    app: AppDep,
    who: PrincipalDep,
    state: Literal["open", "resolved"] | None = None,
    service: Line | None = None,
    environment: Line | None = None,
    cursor: Cursor = None,
    limit: int = limit_query(100, 1000),
) -> Page[dict[str, Any]]:
    """Incidents, newest first (of the services you may read); follow `next_cursor` for more."""
    return page_of(
        lambda before, n: incidents.incidents(
            app.engine,
            state=state,
            service=service,
            environment=environment,
            limit=n,
            before=before,
        ),
        key=lambda i: i.id,
        cursor=cursor,
        limit=limit,
        out=lambda i: dict(i.__dict__),
        keep=lambda i: not i.service or app.access.can_read(who, [i.service]),
    )


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: Id, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """One incident with the runbook runs attached to it."""
    found, runs = incidents.incident(app.engine, incident_id)
    out = _incident(app, who, found)
    out["runbook_runs"] = [{"id": r.id, "runbook": r.runbook, "state": r.state.value} for r in runs]
    return out


@router.post("/incidents/{incident_id}/resolve")
def resolve_incident(
    incident_id: Id, body: NoteIn, app: AppDep, who: PrincipalDep
) -> dict[str, Any]:
    """Resolve an incident by hand."""
    found, _ = incidents.incident(app.engine, incident_id)
    _incident(app, who, found)
    _may_manage(app, who, found.environment, found.service)
    return dict(
        incidents.resolve_incident(app.engine, incident_id, actor=who.name, note=body.note).__dict__
    )
