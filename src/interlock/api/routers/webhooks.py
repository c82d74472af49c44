"""Outbound webhooks: where each one stands (cursor, backlog, last success, last error)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from interlock.api.deps import AppDep, PrincipalDep
from interlock.errors import Forbidden
from interlock.events.dispatcher import webhook_status

router = APIRouter(tags=["webhooks"])


@router.get("/webhooks")
def list_webhooks(app: AppDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """Each webhook of the active config: delivered up to `cursor`, `pending` events after it.

    Needs `audit.read` or `config.read`. Secrets are never shown; `secret_set` says whether
    the variable is set on this server.
    """
    if not (app.access.allows(who, "audit.read") or app.access.allows(who, "config.read")):
        raise Forbidden(
            f"{who.name} may not read webhooks: it needs audit.read or config.read "
            "(an administrator grants it under `permissions:` in interlock.yaml)"
        )
    return webhook_status(app.engine, app.configs.active().config.notifications)
