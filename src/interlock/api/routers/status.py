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
    return StatusOut(
        environments=envs,
        services=services,
        entries=[StatusEntry(**e.__dict__) for e in entries],
    )
