"""Outbound webhooks: where each one stands, and the operator's way out of a stuck stream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.text import Line, Text
from interlock.domain.bounds import RecordId
from interlock.engine.events.dispatcher import retry_now, skip_events, webhook_status
from interlock.errors import Forbidden

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


class SkipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    through: RecordId = Field(
        description="Skip every audit event up to and including this sequence number.",
    )
    reason: Text = Field(min_length=1, max_length=2000, description="Why (audited).")


@router.post("/webhooks/{name}/skip")
def skip(name: Line, body: SkipIn, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Move the webhook's cursor past the events up to `through`: they are never sent.

    For a receiver that refuses one event for good (later events wait behind it).
    Needs `webhooks.manage`; audited as `webhook.skipped`. 409 when the cursor is
    already past `through`; 422 when `through` is after the newest audit event.
    """
    app.access.require(who, "webhooks.manage")
    return skip_events(
        app.engine,
        app.configs.active().config.notifications,
        name=name,
        through=body.through,
        actor=who.name,
        reason=body.reason,
    )


@router.post("/webhooks/{name}/retry")
def retry(name: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Forget the webhook's backoff: the next scheduler tick delivers (the receiver is fixed).

    Needs `webhooks.manage`; audited as `webhook.retried`.
    """
    app.access.require(who, "webhooks.manage")
    return retry_now(
        app.engine, app.configs.active().config.notifications, name=name, actor=who.name
    )
