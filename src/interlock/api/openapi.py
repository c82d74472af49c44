"""/openapi.json as the API answers: problem+json errors, bearer tokens, links between routes.

FastAPI documents the success of each route and a 422 with its own validation
body; Interlock answers every error as ``application/problem+json`` (see
``problems.py``). The statuses every route of a kind can answer are added here
once, so the document stays true without a ``responses=`` on every route; a
route that answers more (a 200 beside its 201, a 413) says so in its decorator.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from interlock.api.problems import PROBLEM

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem: what was wrong and what to do about it.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Every problem of the input, with the field it is about (422).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# What each status means on any route that can answer it.
MEANING = {
    401: "No valid bearer token.",
    403: "The token's user may not do this (the detail names the permission).",
    404: "Something named in the path or body does not exist, or you may not read it.",
    409: "The state of what you act on does not allow it now (the detail says why).",
    413: "The body is larger than this route accepts.",
    415: "The body's content type is not one this route reads.",
    422: "Invalid input: `errors` names each field and what is wrong with it.",
    503: "The server cannot answer now (e.g. its database schema is out of date).",
}
_WRITES = {"post", "put", "patch", "delete"}
# Routes outside /api/v1 that need a token all the same.
_TOKEN_ROUTES = {"/metrics"}


def _by(**parameters: str) -> dict[str, Any]:
    return {"parameters": parameters}


# OpenAPI links: the id one answer gives is what the next request names, so a
# stateful client (Schemathesis) can register an artifact, release it, approve,
# cancel, open an incident and resolve it, as a person would.
# "METHOD PATH STATUS" of the answer -> link name -> ("METHOD PATH" it leads to, how).
_NEW = "$response.body#/id"
_ARTIFACT = {"service": "$response.body#/service", "version": "$response.body#/version"}
_RELEASE = {"parameters": {"release_id": _NEW}}
_SAME_RELEASE = {"parameters": {"release_id": "$request.path.release_id"}}
LINKS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "POST /api/v1/artifacts 201": {
        "ReleaseIt": ("POST /api/v1/releases", {"requestBody": {"items": [_ARTIFACT]}}),
        "GetIt": ("GET /api/v1/artifacts/{service}/{version}", {"parameters": _ARTIFACT}),
        "BlockIt": ("POST /api/v1/artifacts/{service}/{version}/block", {"parameters": _ARTIFACT}),
    },
    "POST /api/v1/releases 201": {
        "GetIt": ("GET /api/v1/releases/{release_id}", _RELEASE),
        "ApproveIt": ("POST /api/v1/releases/{release_id}/approvals", _RELEASE),
        "CancelIt": ("POST /api/v1/releases/{release_id}/cancel", _RELEASE),
        "ItsLogs": ("GET /api/v1/releases/{release_id}/logs", _RELEASE),
        "ItsNotes": ("GET /api/v1/releases/{release_id}/notes", _RELEASE),
        "OverrideIt": ("POST /api/v1/releases/{release_id}/overrides", _RELEASE),
    },
    "POST /api/v1/releases/{release_id}/approvals 201": {
        "GetIt": ("GET /api/v1/releases/{release_id}", _SAME_RELEASE),
        "CancelIt": ("POST /api/v1/releases/{release_id}/cancel", _SAME_RELEASE),
    },
    "POST /api/v1/rollbacks 201": {"GetIt": ("GET /api/v1/releases/{release_id}", _RELEASE)},
    "POST /api/v1/releases/{release_id}/overrides 201": {
        "ReviewIt": ("POST /api/v1/overrides/{override_id}/review", _by(override_id=_NEW)),
    },
    "POST /api/v1/incidents 201": {
        "GetIt": ("GET /api/v1/incidents/{incident_id}", _by(incident_id=_NEW)),
        "ResolveIt": ("POST /api/v1/incidents/{incident_id}/resolve", _by(incident_id=_NEW)),
    },
    "POST /api/v1/runbooks/{name}/runs 201": {
        "GetIt": ("GET /api/v1/runbook-runs/{run_id}", _by(run_id=_NEW)),
        "SignAStep": ("POST /api/v1/runbook-runs/{run_id}/steps/{step}/sign", _by(run_id=_NEW)),
    },
    "POST /api/v1/environments/{environment}/lock 200": {
        "UnlockIt": (
            "DELETE /api/v1/environments/{environment}/lock",
            _by(environment="$request.path.environment"),
        ),
    },
    "POST /api/v1/users 201": {
        "TokenFor": ("POST /api/v1/users/{name}/tokens", _by(name="$response.body#/name")),
        "TokensOf": ("GET /api/v1/users/{name}/tokens", _by(name="$response.body#/name")),
    },
    "POST /api/v1/users/{name}/tokens 201": {
        "RevokeIt": ("DELETE /api/v1/tokens/{token_id}", _by(token_id=_NEW)),
    },
}


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem statuses, the bearer scheme and the links to FastAPI's document."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `interlock token create` (ilk_...).",
        }
    }
    ids = {}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            ids[f"{method.upper()} {path}"] = operation.get("operationId")
            _complete_operation(path, method, operation)
    for answer, links in LINKS.items():
        method, path, status = answer.split(" ")
        response = document["paths"][path][method.lower()]["responses"][status]
        response["links"] = {
            name: {"operationId": ids[target], **how} for name, (target, how) in links.items()
        }
    return document


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    if not (path.startswith("/api/") or path in _TOKEN_ROUTES):
        return  # health checks: no token, their own bodies
    statuses |= {401, 403, 422}
    if "{" in path or "requestBody" in operation:
        statuses.add(404)
    if method in _WRITES:
        statuses.add(409)
    if "requestBody" in operation:
        statuses.add(413)  # api/bodies.py: past the route's cap, while reading
    operation.setdefault("security", [{"bearer": []}])
    for status in sorted(statuses):
        found = responses.setdefault(str(status), {})
        found["description"] = found.get("description") or MEANING.get(status, "Error")
        found["content"] = {PROBLEM: {"schema": _PROBLEM_REF}}
