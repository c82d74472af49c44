"""The inventory: which version of every service runs in every environment."""

from __future__ import annotations

from fastapi import APIRouter

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.schemas import StatusEntry, StatusOut
from interlock.engine import views

router = APIRouter(tags=["status"])


@router.get("/status", response_model=StatusOut)
def status(app: AppDep, who: PrincipalDep) -> StatusOut:
    """Service × environment: version, digest, when, by whom, from which release."""
    envs, services, entries = views.status(app.engine, app.configs)
    readable = app.access.readable_services(who)
    if readable is not None:
        services = [s for s in services if s in readable]
        entries = [e for e in entries if e.service in readable]
    seen = views.observations(app.engine)
    out = []
    for entry in entries:
        observed = seen.get((entry.service, entry.environment))
        out.append(
            StatusEntry(
                **entry.__dict__,
                observed_version=observed.version if observed else None,
                observed_at=observed.observed_at if observed else None,
                drift=observed is not None and observed.version != entry.version,
            )
        )
    return StatusOut(environments=envs, services=services, entries=out)
