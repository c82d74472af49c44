"""The inventory: which version of every service runs in every environment."""

from __future__ import annotations

from fastapi import APIRouter

from interlock.api.deps import AppDep
from interlock.api.schemas import StatusEntry, StatusOut
from interlock.engine import views

router = APIRouter(tags=["status"])


@router.get("/status", response_model=StatusOut)
def status(app: AppDep) -> StatusOut:
    """Service × environment: version, digest, when, by whom, from which release."""
    envs, services, entries = views.status(app.engine, app.configs)
    return StatusOut(
        environments=envs,
        services=services,
        entries=[StatusEntry(**e.__dict__) for e in entries],
    )
