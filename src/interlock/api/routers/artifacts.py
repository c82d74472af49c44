"""Artifacts registered by CI, blocked versions, and observed versions (drift)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import Page
from interlock.api.text import Line, Text
from interlock.engine import artifacts

router = APIRouter(tags=["artifacts"])


class ArtifactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Line
    version: Line
    digest: Line = Field(description="sha256:<64 hex digits> of the built artifact.")
    commit: Line | None = Field(default=None, description="The git commit it was built from.")
    repo: Line | None = None
    build_url: Line | None = None
    committed_at: datetime | None = Field(default=None, description="For lead time.")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=4000)


class ObservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Line
    environment: Line
    version: Line


def _out(artifact: Any) -> dict[str, Any]:
    return {**artifact.__dict__, "commit": artifact.commit_sha, "blocked": artifact.blocked()}


@router.post(
    "/artifacts",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The same build was registered before (`new` is false)."}},
)
def register(
    body: ArtifactIn, response: Response, app: AppDep, who: PrincipalDep
) -> dict[str, Any]:
    """Register a build (201); the same build again is 200; another digest is 409."""
    app.access.require(who, "artifact.register", services=[body.service])
    found, new = artifacts.register(
        app.engine,
        actor=who.name,
        service=body.service,
        version=body.version,
        digest=body.digest,
        commit=body.commit,
        repo=body.repo,
        build_url=body.build_url,
        committed_at=body.committed_at,
    )
    if not new:
        response.status_code = status.HTTP_200_OK
    return {**_out(found), "new": new}


@router.get("/artifacts", response_model=Page[dict[str, Any]])
def listing(
    app: AppDep,
    who: PrincipalDep,
    service: Line | None = None,
    cursor: Cursor = None,
    limit: int = limit_query(100, 1000),
) -> Page[dict[str, Any]]:
    """Registered artifacts, newest first (of the services you may read)."""
    return page_of(
        lambda before, n: artifacts.listing(app.engine, service, n, before),
        key=lambda a: a.id,
        cursor=cursor,
        limit=limit,
        out=_out,
        keep=lambda a: app.access.can_read(who, [a.service]),
    )


@router.get("/versions/{version}/services")
def services_of_version(version: Line, app: AppDep, who: PrincipalDep) -> list[str]:
    """The services (that you may read) with a registered artifact or a release of VERSION."""
    return [
        s
        for s in artifacts.services_with_version(app.engine, version)
        if app.access.can_read(who, [s])
    ]


@router.get("/artifacts/{service}/{version}")
def get(service: Line, version: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """One artifact: digest, commit, build, and whether it is blocked."""
    app.readable_or_404(who, [service], f"artifact {service}@{version}")
    return _out(artifacts.get(app.engine, service, version))


@router.post("/artifacts/{service}/{version}/block")
def block(
    service: Line, version: Line, body: ReasonIn, app: AppDep, who: PrincipalDep
) -> dict[str, Any]:
    """Mark a version bad: never released or promoted again; running deployments stop."""
    app.access.require(who, "rollback", services=[service])
    return _out(
        artifacts.block(
            app.engine, actor=who.name, service=service, version=version, reason=body.reason
        )
    )


@router.post("/artifacts/{service}/{version}/unblock")
def unblock(
    service: Line, version: Line, body: ReasonIn, app: AppDep, who: PrincipalDep
) -> dict[str, Any]:
    """Allow a blocked version again (audited)."""
    app.access.require(who, "rollback", services=[service])
    return _out(
        artifacts.unblock(
            app.engine, actor=who.name, service=service, version=version, reason=body.reason
        )
    )


@router.post("/observations", status_code=status.HTTP_201_CREATED)
def observe(body: ObservationIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Report the version that actually runs somewhere; `status` shows drift."""
    app.access.require(who, "artifact.register", services=[body.service])
    artifacts.observe(
        app.engine,
        actor=who.name,
        service=body.service,
        environment=body.environment,
        version=body.version,
    )
    return body.model_dump()
