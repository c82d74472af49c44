"""One exception root for the whole product.

Every error carries the CLI exit code and the HTTP status it maps to, and a
message that says what was wrong and what to do about it. The API turns these
into ``application/problem+json``; the CLI prints the message and exits with
the code.
"""

from __future__ import annotations

from typing import Any

# Exit codes are a documented contract (README, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_NEEDS_ATTENTION = 7
EXIT_TIMEOUT = 8


class InterlockError(Exception):
    """Root of every error Interlock raises on purpose."""

    exit_code: int = EXIT_FAILED
    http_status: int = 500
    kind: str = "error"  # the problem type's last path segment
    title: str = "Interlock error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem document for this error."""
        body: dict[str, Any] = {
            "type": f"https://interlock.dev/problems/{self.kind}",
            "title": self.title,
            "status": self.http_status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class InvalidInput(InterlockError):
    exit_code = EXIT_USAGE
    http_status = 422
    kind = "invalid-input"
    title = "Invalid input"

    def problem(self) -> dict[str, Any]:
        """Like every 422: ``errors`` lists each problem with the field it is about."""
        body = super().problem()
        if "errors" not in body:
            body["errors"] = [{"field": self.extra.get("field") or "body", "message": self.detail}]
        return body


class ConfigError(InvalidInput):
    """interlock.yaml is not valid; ``errors`` lists every problem with its position."""

    kind = "invalid-config"
    title = "Invalid configuration"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])
        self.errors = errors or []


class NotFound(InterlockError):
    exit_code = EXIT_NOT_FOUND
    http_status = 404
    kind = "not-found"
    title = "Not found"


class Conflict(InterlockError):
    exit_code = EXIT_CONFLICT
    http_status = 409
    kind = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    kind = "illegal-transition"
    title = "Illegal state transition"


class Unauthenticated(InterlockError):
    exit_code = EXIT_DENIED
    http_status = 401
    kind = "unauthenticated"
    title = "Authentication required"


class Forbidden(InterlockError):
    exit_code = EXIT_DENIED
    http_status = 403
    kind = "forbidden"
    title = "Forbidden"


class Unreachable(InterlockError):
    exit_code = EXIT_UNREACHABLE
    http_status = 503
    kind = "unreachable"
    title = "Server unreachable"


class SchemaOutOfDate(InterlockError):
    exit_code = EXIT_FAILED
    http_status = 503
    kind = "schema-out-of-date"
    title = "Database schema out of date"


class StorageUnavailable(InterlockError):
    exit_code = EXIT_FAILED
    http_status = 503
    kind = "storage-unavailable"
    title = "Database unavailable"
