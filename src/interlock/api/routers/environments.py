"""Environment locks: stop every deploy to an environment, audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.text import Line, Text
from interlock.engine import environments

router = APIRouter(tags=["environments"])


class LockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=4000)


@router.get("/environments/locks")
def locks(app: AppDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """Environments that are locked now."""
    return [lock.__dict__ for lock in environments.locks(app.engine)]


@router.post("/environments/{environment}/lock")
def lock(environment: Line, body: LockIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Lock an environment: queued and new deployments wait until it is unlocked."""
    app.access.require_everywhere(who, "lock", environment=environment)
    return environments.lock(
        app.engine, environment=environment, actor=who.name, reason=body.reason
    ).__dict__


@router.delete("/environments/{environment}/lock")
def unlock(environment: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Unlock an environment; queued deployments start."""
    app.access.require_everywhere(who, "lock", environment=environment)
    environments.unlock(app.engine, environment=environment, actor=who.name)
    return {"environment": environment, "locked": False}
