"""Messages to people: channels, the delivery log, a test message, Slack buttons, links."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from interlock.api import problems
from interlock.api.deps import AppDep, AppState, PrincipalDep, signed, state
from interlock.api.text import Line
from interlock.engine.events.auth import refuse
from interlock.engine.identity import Principal
from interlock.errors import Forbidden, InterlockError, InvalidInput, NotFound, Unauthenticated
from interlock.notifications import links, slack
from interlock.notifications.content import Notice
from interlock.notifications.send import send
from interlock.storage.notifications import OutboxEntry

router = APIRouter(tags=["notifications"])
# At the root, not under /api: the links in mail open pages, not API answers.
pages = APIRouter(include_in_schema=False)


def _may_read(app: AppState, who: Principal) -> None:
    if not (app.access.allows(who, "audit.read") or app.access.allows(who, "config.read")):
        raise Forbidden(
            f"{who.name} may not read notifications: it needs audit.read or config.read "
            "(an administrator grants it under `permissions:` in interlock.yaml)"
        )


def _entry(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "channel": entry.channel,
        "event": entry.event,
        "subject": entry.subject,
        "recipient": entry.recipient,
        "title": Notice.from_payload(entry.payload).title(),
        "created_at": entry.created_at,
        "state": entry.state,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "delivered_at": entry.delivered_at,
        "last_error": entry.last_error,
    }


@router.get("/notifications/channels")
def channels(app: AppDep, who: PrincipalDep) -> list[dict[str, Any]]:
    """Each channel of the active config, with the messages it has not delivered yet.

    Needs `audit.read` or `config.read`. URLs and secrets are not shown.
    """
    _may_read(app, who)
    settings = app.configs.active().config.notifications
    with app.engine.db.read() as tx:
        pending = tx.outbox_pending_counts()
        heads = {c.name: tx.outbox_head(c.name) for c in settings.channels}
    out = []
    for channel in settings.channels:
        head = heads[channel.name]
        out.append(
            {
                "name": channel.name,
                "kind": channel.kind,
                "pending": pending.get(channel.name, 0),
                "last_error": head.last_error if head else None,
                "next_attempt_at": head.next_attempt_at if head else None,
            }
        )
    return out


@router.get(
    "/notifications/log",
    responses={404: {"description": "No channel of that name in the active config."}},
)
def delivery_log(
    app: AppDep,
    who: PrincipalDep,
    channel: Line | None = Query(default=None, description="Only this channel."),
    state_: str | None = Query(
        default=None, alias="state", pattern="^(pending|delivered)$", description="Only these."
    ),
    limit: int = Query(default=50, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The delivery log: the newest messages first, with their attempts and last error.

    Needs `audit.read` or `config.read`. The approvers' personal links are never shown.
    """
    _may_read(app, who)
    if channel is not None:
        _channel(app, channel)
    with app.engine.db.read() as tx:
        entries = tx.outbox_log(channel, limit=limit, state=state_)
    return [_entry(e) for e in entries]


def _channel(app: AppState, name: str) -> Any:
    settings = app.configs.active().config.notifications
    try:
        return settings.channel(name)
    except KeyError:
        known = ", ".join(c.name for c in settings.channels) or "none"
        raise NotFound(
            f"no channel named {name!r} in the active config (channels: {known})"
        ) from None


@router.post("/notifications/channels/{name}/test")
def test_channel(
    name: Line,
    app: AppDep,
    who: PrincipalDep,
    to: Line | None = Query(default=None, description="E-mail: the address to send to."),
) -> dict[str, Any]:
    """Send a test message on the channel now and say how it went (needs `webhooks.manage`)."""
    app.access.require(who, "webhooks.manage")
    channel = _channel(app, name)
    settings = app.configs.active().config.notifications
    notice = Notice(
        event="test",
        at=app.engine.clock.now(),
        actor=who.name,
        reason=f"{who.name} tested the channel {name}",
        base_url=settings.public_url,
    )
    recipient = to
    if channel.kind == "email" and recipient is None:
        recipient = ", ".join(channel.to) or None
        if recipient is None:
            with app.engine.db.read() as tx:
                found = tx.get_user(who.name)
            recipient = found.email if found is not None else None
        if recipient is None:
            raise InvalidInput(
                "this e-mail channel has no `to` and you have no e-mail address: give --to",
                field="to",
            )
    error = send(channel, notice, recipient, os.environ, frozenset(app.engine.secrets.values()))
    return {"channel": name, "kind": channel.kind, "delivered": error is None, "error": error}


def _slack(request: Request, app: AppState, raw: bytes) -> JSONResponse:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        return JSONResponse(slack.handle(app.engine, app.access, headers, raw))
    except Unauthenticated as exc:  # audited (once a minute per caller), as other hooks
        refuse(
            app.engine,
            host=request.client.host if request.client else "",
            endpoint=request.url.path,
            why=exc.detail,
            hint="requests here must be signed by the Slack app's signing secret",
        )


@router.post("/hooks/slack")
@signed
async def slack_actions(request: Request) -> JSONResponse:
    """Slack's interactive requests (the Approve button of a waiting gate).

    Verified with the Slack app's signing secret (`X-Slack-Signature`, v0, 5-minute window,
    replays refused). The Slack user acts as the Interlock user mapped under
    `notifications.people`; an unknown user is told so.
    """
    app = state(request)
    raw = await request.body()
    return await run_in_threadpool(_slack, request, app, raw)


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'",
        },
    )


def _refused(request: Request, exc: InterlockError) -> Response:
    """A page for a browser; problem+json for any other client."""
    if "text/html" in request.headers.get("accept", ""):
        return _html(links.result_page(None, exc), exc.http_status)
    return problems.error_response(exc)


@pages.get("/approve/{token}")
def open_link(token: Line, request: Request, decision: str = "approve") -> Response:
    """A confirmation page only: mail scanners open links, and opening changes nothing."""
    app = state(request)
    try:
        found = links.look(app.engine, token)
    except InterlockError as exc:
        return _refused(request, exc)
    return _html(links.confirm_page(found, "reject" if decision == "reject" else "approve"))


def _act(request: Request, app: AppState, token: str, raw: bytes) -> Response:
    form = parse_qs(raw.decode("utf-8", "replace"))
    decision = (form.get("decision") or [""])[0]
    comment = (form.get("comment") or [""])[0] or None
    try:
        result = links.act(app.engine, app.access, token, decision, comment)
    except InterlockError as exc:
        return _refused(request, exc)
    return _html(links.result_page(result, None))


@pages.post("/approve/{token}")
async def use_link(token: Line, request: Request) -> Response:
    """The confirmation: records the decision through the API's approval rules."""
    app = state(request)
    raw = await request.body()
    return await run_in_threadpool(_act, request, app, token, raw)
