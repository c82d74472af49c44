"""Request bodies: the caller is known before one is read, and none is read past its cap.

FastAPI reads a route's body before it resolves the route's dependencies (the
bearer token among them), so a body sent without a token would be read whole
before its 401. This middleware answers first: the token of a request that
carries a body is checked before the body is read, a ``Content-Length`` over
the route's cap is a 413 at once, and a body without one is counted while it
streams and refused as soon as it passes the cap. Event intake authenticates by
a signature over the body, so it cannot be authenticated first: it is capped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.api import problems
from interlock.errors import InterlockError, InvalidInput
from interlock.events.signing import SIGNATURE_HEADER

MiB = 1 << 20
EVENTS = "/api/v1/events"
HOOKS = "/api/v1/hooks/github"
SLACK = "/api/v1/hooks/slack"  # signed by Slack: no token
# Deeper JSON than any event or payload needs; the parsers and the schema validator
# recurse once (or more) per level.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class BodyLimits:
    """The largest request body each route takes, in bytes (``interlock server --max-*-body``)."""

    default: int = 1 * MiB
    events: int = 1 * MiB  # a CDEvent is a few kilobytes
    hooks: int = 5 * MiB  # GitHub payloads; GitHub itself caps them at 25 MB

    def of(self, path: str) -> tuple[int, str]:
        """The cap of the route at ``path`` and the server option that sets it."""
        if path == EVENTS:
            return self.events, "--max-event-body"
        if path == HOOKS:
            return self.hooks, "--max-hook-body"
        return self.default, "--max-body"


def _token_first(path: str, headers: Headers) -> bool:
    """Whether the request must show a valid token before its body is read."""
    if not path.startswith("/api/") or path in (HOOKS, SLACK):
        return False
    # /events takes a token, or a signature over the body (checked once it is read).
    return path != EVENTS or "authorization" in headers or SIGNATURE_HEADER not in headers


def _too_large(limit: int, option: str) -> str:
    return (
        f"the request body is larger than this route takes ({limit} bytes); the server's "
        f"{option} option raises it"
    )


class BodyGuard:
    """ASGI middleware: authenticate, then read at most the route's cap (see the module)."""

    def __init__(
        self, app: ASGIApp, limits: BodyLimits, authenticate: Callable[[Request], Any]
    ) -> None:
        self.app = app
        self.limits = limits
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan's messages (and websockets) pass
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not (headers.get("content-length", "0") != "0" or "transfer-encoding" in headers):
            await self.app(scope, receive, send)
            return
        limit, option = self.limits.of(scope["path"])
        try:
            if _token_first(scope["path"], headers):
                await run_in_threadpool(self.authenticate, Request(scope))
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await problems.problem_response(
                    413, "Payload too large", _too_large(limit, option)
                )(scope, receive, send)
                return
        except InterlockError as exc:
            await problems.error_response(exc)(scope, receive, send)
            return
        size = 0

        async def capped() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    # An HTTPException, so FastAPI's own body reading passes it on as is.
                    raise HTTPException(413, _too_large(limit, option))
            return message

        await self.app(scope, capped, send)


def _depth(document: Any) -> int:
    """How deeply arrays and objects nest in ``document`` (without recursion)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def json_document(raw: bytes, field: str = "body") -> Any:
    """Parse a JSON body nested at most :data:`MAX_JSON_DEPTH` deep (else 422 naming ``field``)."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field=field) from None
    except RecursionError:
        document = None
        deep = True
    else:
        deep = _depth(document) > MAX_JSON_DEPTH
    if deep:
        raise InvalidInput(
            f"the JSON nests more than {MAX_JSON_DEPTH} arrays or objects deep", field=field
        )
    return document
