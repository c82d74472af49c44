"""What the signed-in person may do: the web UI shows only the actions that would pass."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from interlock.api.deps import AppDep, PrincipalDep
from interlock.engine.access import abilities

router = APIRouter(tags=["identity"])


@router.get("/users/me/abilities")
def mine(app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Your allowed actions per environment and service (the same rules every call checks).

    A hint for showing buttons, never a grant: each action is checked again when taken.
    """
    return abilities(app.access, who)
