"""Events in: CDEvents from any tool (``/events``) and GitHub webhooks (``/hooks/github``).

The raw body is read first (signatures are over the exact bytes; its cap is
:class:`~interlock.api.bodies.BodyLimits`), then the work runs in the thread
pool like every other route.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from interlock.api.bodies import json_document
from interlock.api.deps import AppState, principal, signed, state
from interlock.engine.events.auth import acting_as, refuse, signed_by
from interlock.engine.events.github import receive_github
from interlock.engine.events.inbound import receive
from interlock.engine.events.receiving import Receiver
from interlock.engine.identity import Principal
from interlock.errors import InterlockError, InvalidInput
from interlock.events.signing import GITHUB_SIGNATURE_HEADER, SIGNATURE_HEADER

router = APIRouter(tags=["events"])

PLAIN = ("", "application/json", "application/cdevents+json")
STRUCTURED = "application/cloudevents+json"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    "200": {"description": "Acted on: `outcome` says what was done (or `duplicate`)."},
    "202": {"description": "Accepted and ignored; `detail` says why."},
    "401": {"description": "No valid token or signature (audited)."},
    "413": {"description": "The body is larger than this route reads."},
    "415": {"description": "The content type is not one this route reads."},
    "422": {"description": "Not a valid CDEvent; `field` names the first problem."},
}


_JSON_OBJECT = {"schema": {"type": "object"}}
# A token, or no token and a signature over the body (the webhook's secret).
_TOKEN_OR_SIGNATURE: list[dict[str, list[str]]] = [{"bearer": []}, {}]
_EVENT_BODY = {
    "security": _TOKEN_OR_SIGNATURE,
    "requestBody": {
        "required": True,
        "description": "A CDEvent 0.5.1, or a structured CloudEvent carrying one in `data`.",
        "content": {
            "application/json": _JSON_OBJECT,
            "application/cdevents+json": _JSON_OBJECT,
            "application/cloudevents+json": _JSON_OBJECT,
        },
    },
}
_GITHUB_BODY = {
    "security": _TOKEN_OR_SIGNATURE,
    "requestBody": {
        "required": True,
        "description": "A GitHub webhook payload, signed in X-Hub-Signature-256.",
        "content": {"application/json": _JSON_OBJECT},
    },
}


class UnsupportedMediaType(InterlockError):
    http_status = 415
    kind = "unsupported-media-type"
    title = "Unsupported media type"
    exit_code = 2


def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def _caller(request: Request) -> str:
    return request.client.host if request.client else "-"


def _signed_or_token(request: Request, app: AppState, raw: bytes, kind: str) -> Principal:
    """A bearer token if one is sent, else a valid signature of a configured source."""
    header = request.headers.get(SIGNATURE_HEADER)
    if request.headers.get("authorization") or header is None:
        return principal(request)  # 401 (audited) without a valid token
    config = app.configs.active().config
    source = signed_by(config, kind, raw, header)
    if source is None:
        refuse(app.engine, host=_caller(request), endpoint=request.url.path, why="bad signature")
    return acting_as(app.identity, config, source)


def cdevent_of(media_type: str, document: Any) -> Any:
    """The CDEvent in a request: the body itself, or the ``data`` of a structured CloudEvent."""
    if media_type in PLAIN:
        return document
    if media_type != STRUCTURED:
        raise UnsupportedMediaType(
            f"{media_type!r} is not accepted: send the CDEvent as application/json (or "
            "application/cdevents+json), or a structured CloudEvent as "
            "application/cloudevents+json"
        )
    if not isinstance(document, dict):
        raise InvalidInput("a structured CloudEvent is a JSON object", field="body")
    if "data" in document:
        return document["data"]
    if "data_base64" in document:
        try:
            decoded = base64.b64decode(str(document["data_base64"]), validate=True)
        except (ValueError, binascii.Error) as exc:
            raise InvalidInput(
                f"data_base64 is not base64 JSON: {exc}", field="data_base64"
            ) from None
        return json_document(decoded, field="data_base64")
    raise InvalidInput("the CloudEvent has no data (the CDEvent)", field="data")


def _events(request: Request, app: AppState, raw: bytes) -> JSONResponse:
    media_type = _media_type(request)
    who = _signed_or_token(request, app, raw, "cdevents")
    event = cdevent_of(media_type, json_document(raw))
    receiver = Receiver(app.engine, app.access, who, app.configs.active().config)
    outcome = receive(receiver, event)
    return JSONResponse(outcome.body, status_code=outcome.status)


@router.post("/events", responses=_RESPONSES, openapi_extra=_EVENT_BODY)
@signed
async def post_event(request: Request) -> JSONResponse:
    """Receive one CDEvent 0.5.1: JSON, or a structured CloudEvent.

    Authenticate with a bearer token, or sign the raw body (`X-Interlock-Signature-256:
    sha256=<hex HMAC-SHA256>`) with the secret of a source under `notifications.inbound`.
    """
    app = state(request)
    raw = await request.body()
    return await run_in_threadpool(_events, request, app, raw)


def _github(request: Request, app: AppState, raw: bytes) -> JSONResponse:
    config = app.configs.active().config
    header = request.headers.get(GITHUB_SIGNATURE_HEADER)
    source = signed_by(config, "github", raw, header)
    if source is None:
        why = "bad signature" if header else "no signature"
        refuse(app.engine, host=_caller(request), endpoint=request.url.path, why=why)
    who = acting_as(app.identity, config, source)
    if _media_type(request) == "application/x-www-form-urlencoded":
        form = parse_qs(raw.decode("utf-8", "replace"))
        payload = json_document((form.get("payload") or [""])[0].encode())
    else:
        payload = json_document(raw)
    outcome = receive_github(
        Receiver(app.engine, app.access, who, config),
        source.name,
        request.headers.get("x-github-event") or "",
        request.headers.get("x-github-delivery"),
        payload,
        raw,
    )
    return JSONResponse(outcome.body, status_code=outcome.status)


@router.post("/hooks/github", responses=_RESPONSES, openapi_extra=_GITHUB_BODY)
@signed
async def github_hook(request: Request) -> JSONResponse:
    """Receive a GitHub webhook, verified with `X-Hub-Signature-256` (constant time).

    `ping` → 200; a published package → an artifact; a successful `deployment_status` → an
    observation; anything else → 202. The secret is a source of `kind: github` under
    `notifications.inbound`.
    """
    app = state(request)
    raw = await request.body()
    return await run_in_threadpool(_github, request, app, raw)
