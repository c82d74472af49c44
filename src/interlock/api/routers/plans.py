"""Plan a release before creating it: its route, steps, gates and expected durations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.schemas import ItemIn
from interlock.api.text import Line
from interlock.domain.names import parse_ref
from interlock.domain.records import Item
from interlock.engine import views
from interlock.engine.estimates import estimate_plan, gate_waits
from interlock.engine.releases import preview_release
from interlock.errors import InvalidInput

router = APIRouter(tags=["releases"])


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    services: list[Line] = Field(default_factory=list, description="SERVICE@VERSION entries.")
    items: list[ItemIn] = Field(default_factory=list, description="With digests and commits.")
    until: Line | None = Field(default=None, description="Stop after this environment.")
    start: Line | None = Field(default=None, alias="from", description="Start here.")


@router.post("/plans")
def plan(body: PlanIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """What a release of these versions would do, and how long it is expected to take.

    Stores nothing. Refused as creating it would be: a version blocked or not
    registered where the route requires artifacts, or no `release.create` there.
    """
    items = [Item(r.service, r.version) for r in map(parse_ref, body.services)]
    items += [Item(i.service, i.version, i.digest, i.commit) for i in body.items]
    if not items:
        raise InvalidInput(
            "give at least one SERVICE@VERSION in `services` or `items`", field="services"
        )
    draft, pinned = preview_release(
        app.engine, app.configs, items=items, until=body.until, start=body.start
    )
    for env in draft.environments:
        app.access.require(
            who, "release.create", environment=env.name, services=[i.service for i in items]
        )
    steps, runs = views.step_estimates(app.engine, [i.service for i in items])
    estimate = estimate_plan(draft, steps, gate_waits(app.engine), now=app.engine.clock.now())
    return {
        "items": [
            {"service": i.service, "version": i.version, "digest": i.digest, "commit": i.commit}
            for i in pinned
        ],
        "route": [e.name for e in draft.environments],
        "plan": draft.to_json(),
        "estimate": estimate.as_dict(),
        "runs": runs,
    }
