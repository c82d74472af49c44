"""Approvals and rejections, what waits on me, and break-glass overrides."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.paging import Cursor, limit_query, page_of
from interlock.api.schemas import Page
from interlock.api.text import Line, Text
from interlock.engine import approval_views, approvals, environments

router = APIRouter(tags=["approvals"])


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"] = "approve"
    environment: Line | None = Field(
        default=None, description="Default: the environment the release waits in now."
    )
    gate: Line | None = Field(default=None, description="Needed when there are several.")
    comment: Text | None = Field(
        default=None, max_length=4000, description="Why; mandatory to reject."
    )


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: Line
    reason: Text = Field(min_length=1, max_length=4000)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Text = Field(min_length=1, max_length=4000)


@router.post("/releases/{release_id}/approvals", status_code=status.HTTP_201_CREATED)
def decide(release_id: Id, body: DecisionIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Approve or reject a release in an environment (a rejection needs a comment)."""
    return approvals.give(
        app.engine,
        app.access,
        who,
        release_id=release_id,
        environment=body.environment,
        gate=body.gate,
        decision=body.decision,
        comment=body.comment,
    )


@router.get("/approvals/pending", response_model=Page[dict[str, Any]])
def pending(
    app: AppDep,
    who: PrincipalDep,
    cursor: Cursor = None,
    limit: int = limit_query(100, 500),
) -> Page[dict[str, Any]]:
    """What waits on you: approval gates where your approval is one of those still
    needed (`kind: approval`), and manual steps you can sign off (`kind: manual`, of a
    release's pipeline or of a runbook run).

    Oldest first; follow `next_cursor` for more.
    """
    return page_of(
        lambda after, n: approval_views.pending_for(
            app.engine, app.access, who, limit=n, after=after
        ),
        key=lambda row: row[0],
        cursor=cursor,
        limit=limit,
        out=lambda row: row[1],
        keep=lambda row: row[1] is not None,
    )


@router.post("/releases/{release_id}/overrides", status_code=status.HTTP_201_CREATED)
def override(release_id: Id, body: OverrideIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Break glass: let the release through a closed window or a freeze (audited, flagged)."""
    found = environments.override_window(
        app.engine,
        app.access,
        who,
        release_id=release_id,
        environment=body.environment,
        reason=body.reason,
    )
    return found.__dict__


@router.get("/overrides", response_model=Page[dict[str, Any]])
def overrides(
    app: AppDep,
    who: PrincipalDep,
    unreviewed: bool = False,
    cursor: Cursor = None,
    limit: int = limit_query(100, 500),
) -> Page[dict[str, Any]]:
    """Break-glass overrides, newest first; `unreviewed=true` for those still to review."""
    app.access.require(who, "audit.read")
    return page_of(
        lambda before, n: environments.overrides(
            app.engine, unreviewed=unreviewed, limit=n, before=before
        ),
        key=lambda o: o.id,
        cursor=cursor,
        limit=limit,
        out=lambda o: o.__dict__,
    )


@router.post("/overrides/{override_id}/review")
def review(override_id: Id, body: ReviewIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Record the review of an override (by someone other than who made it)."""
    app.access.require(who, "audit.read")
    found = environments.review_override(
        app.engine, who, override_id=override_id, comment=body.comment
    )
    return found.__dict__
