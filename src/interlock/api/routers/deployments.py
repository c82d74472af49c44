"""Deployments and their steps, with live logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from interlock.api.deps import AppDep, AppState, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import DeploymentOut, LogOut, Page, StepOut
from interlock.api.text import Line
from interlock.domain.bounds import AttemptNumber, LogOffset, RecordId
from interlock.domain.records import Deployment
from interlock.domain.states import DeploymentState
from interlock.engine import run_visibility, views
from interlock.errors import NotFound

router = APIRouter(tags=["deployments"])


@router.get("/deployments", response_model=Page[DeploymentOut])
def list_(
    app: AppDep,
    who: PrincipalDep,
    release_id: RecordId | None = None,
    environment: Line | None = None,
    state_: Annotated[list[DeploymentState] | None, Query(alias="state")] = None,
    cursor: Cursor = None,
    limit: int = limit_query(50, 200),
) -> Page[DeploymentOut]:
    """Deployments, newest first (only those of releases you may read)."""
    return page_of(
        lambda before, n: views.list_deployments(
            app.engine,
            release_id=release_id,
            environment=environment,
            states=[s.value for s in state_ or []],
            cursor=before,
            limit=n,
        ),
        key=lambda d: d.id,
        cursor=cursor,
        limit=limit,
        out=DeploymentOut.of,
        keep=lambda d: _readable(app, who, d),
    )


@router.get("/deployments/{deployment_id}", response_model=DeploymentOut)
def get(deployment_id: Id, app: AppDep, who: PrincipalDep) -> DeploymentOut:
    """One deployment with its steps and their attempts."""
    _check(app, who, views.deployment(app.engine, deployment_id), f"deployment {deployment_id}")
    dv = views.deployment_view(app.engine, deployment_id)
    return DeploymentOut.of(dv.deployment, [StepOut.of(n, dv.attempts.get(n.id)) for n in dv.nodes])


@router.get("/steps/{step_id}", response_model=StepOut)
def step(step_id: Id, app: AppDep, who: PrincipalDep) -> StepOut:
    """One step (or gate) with every attempt."""
    node, attempts = views.step(app.engine, step_id)
    _check(app, who, views.deployment(app.engine, node.deployment_id), f"step {step_id}")
    return StepOut.of(node, attempts)


@router.get("/steps/{step_id}/logs", response_model=LogOut)
def step_logs(
    step_id: Id,
    app: AppDep,
    who: PrincipalDep,
    attempt: AttemptNumber | None = None,
    offset: Annotated[LogOffset, Query(description="Characters already read.")] = 0,
) -> LogOut:
    """A step's output, readable while it runs: poll with `offset` = `next_offset`."""
    node, _ = views.step(app.engine, step_id)
    _check(app, who, views.deployment(app.engine, node.deployment_id), f"step {step_id}")
    node, number, text, finished, truncated = views.step_log(app.engine, step_id, attempt, offset)
    return LogOut(
        step_id=node.id,
        key=node.key,
        attempt=number,
        text=text,
        next_offset=offset + len(text),
        finished=finished,
        truncated=truncated,
    )


def _readable(app: AppState, who: Any, deployment: Deployment) -> bool:
    if deployment.release_id is None:  # a runbook run: as the runbook runs API shows it
        return run_visibility.readable(app.engine, app.access, who, deployment)
    return app.access.can_read(who, views.release_services(app.engine, deployment.release_id))


def _check(app: AppState, who: Any, deployment: Deployment, what: str) -> None:
    if not _readable(app, who, deployment):
        raise NotFound(f"no {what}")
