"""Runbooks: definitions, runs, and sign-offs of manual steps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import DeploymentOut, Page, StepOut
from interlock.api.text import Line, Text
from interlock.domain.bounds import RecordId
from interlock.engine import run_visibility, runbooks, views
from interlock.errors import NotFound

router = APIRouter(tags=["runbooks"])


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[Line, Line] = Field(default_factory=dict)
    environment: Line | None = None
    incident: RecordId | None = None
    reason: Text | None = Field(default=None, max_length=4000)


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Text | None = Field(default=None, max_length=4000)


def _run_out(app: Any, who: Any, run_id: Id) -> dict[str, Any]:
    view = views.deployment_view(app.engine, run_id)
    if view.deployment.kind != "runbook" or not run_visibility.readable(
        app.engine, app.access, who, view.deployment
    ):
        raise NotFound(f"no runbook run {run_id}")
    out = DeploymentOut.of(
        view.deployment, [StepOut.of(n, view.attempts.get(n.id)) for n in view.nodes]
    )
    data = out.model_dump(mode="json")
    data.update(
        runbook=view.deployment.runbook,
        params=view.deployment.params,
        incident=view.deployment.incident_id,
    )
    for step, node in zip(data["steps"], view.nodes, strict=True):
        if node.executor == "manual":
            step["manual"] = node.spec.get("manual")
    return data


@router.get("/runbooks")
def definitions(app: AppDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """The runbooks of the active config, with their parameters and steps."""
    config = app.configs.active().config
    return [
        {
            "name": name,
            "description": book.description,
            "params": {k: v.model_dump() for k, v in book.params.items()},
            "steps": [
                {
                    "name": s.name,
                    "manual": s.manual is not None,
                    "signer": (s.manual.role or s.manual.team) if s.manual else None,
                }
                for s in book.steps
            ],
        }
        for name, book in sorted(config.runbooks.items())
    ]


@router.post("/runbooks/{name}/runs", status_code=status.HTTP_201_CREATED)
def run(name: Line, body: RunIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Start a run (durable, audited; attach it to an incident with `incident`)."""
    found = runbooks.run(
        app.engine,
        app.access,
        who,
        name=name,
        params=body.params,
        environment=body.environment,
        incident_id=body.incident,
        reason=body.reason,
    )
    return _run_out(app, who, found.id)


@router.get("/runbook-runs", response_model=Page[dict[str, Any]])
def runs(
    app: AppDep,
    who: PrincipalDep,
    cursor: Cursor = None,
    limit: int = limit_query(50, 200),
) -> Page[dict[str, Any]]:
    """The runs the caller may see, newest first; follow `next_cursor` for more."""
    return page_of(
        lambda before, n: runbooks.runs(app.engine, limit=n, before=before),
        key=lambda r: r.id,
        cursor=cursor,
        limit=limit,
        keep=lambda r: run_visibility.readable(app.engine, app.access, who, r),
        out=lambda r: {
            "id": r.id,
            "runbook": r.runbook,
            "state": r.state.value,
            "created_by": r.created_by,
            "created_at": r.created_at.isoformat(),
            "environment": r.environment,
            "incident": r.incident_id,
        },
    )


@router.get("/runbook-runs/{run_id}")
def show(run_id: Id, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """One run with its steps; manual steps show their instructions and who signs them.

    A run the caller may not see answers 404, as one that does not exist.
    """
    return _run_out(app, who, run_id)


@router.post("/runbook-runs/{run_id}/steps/{step}/sign")
def sign(run_id: Id, step: Line, body: SignIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Sign off a manual step (only its role or team may)."""
    node = runbooks.sign(
        app.engine, app.access, who, run_id=run_id, step=step, comment=body.comment
    )
    return {"run": run_id, "step": node.name, "state": node.state.value}
