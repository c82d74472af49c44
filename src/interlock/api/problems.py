"""Every error leaves the API as ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from interlock.errors import InterlockError, InvalidInput

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem_response(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://interlock.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


# What FastAPI says of a JSON body it cannot decode (bytes that are not UTF-8).
UNREADABLE_BODY = "There was an error parsing the body"


def error_response(exc: InterlockError) -> JSONResponse:
    """The problem document of an error Interlock raised on purpose."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return JSONResponse(
        exc.problem(), status_code=exc.http_status, media_type=PROBLEM, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(InterlockError)
    async def interlock_error(request: Request, exc: InterlockError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            message = str(error.get("msg", "invalid"))
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            errors.append({"field": _field(tuple(error.get("loc", ()))), "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(422, "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            404: "Not found",
            405: "Method not allowed",
            401: "Authentication required",
            413: "Payload too large",
        }
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 400 and detail == UNREADABLE_BODY:
            # A body that is not UTF-8 is invalid input like any other bad JSON (422).
            return error_response(InvalidInput("the body is not JSON in UTF-8", field="body"))
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path}"
        return problem_response(exc.status_code, titles.get(exc.status_code, "Error"), detail)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "Internal error",
            "the server hit an unexpected error; it is logged on the server. Nothing was "
            "changed unless the response of a retry says otherwise.",
        )
