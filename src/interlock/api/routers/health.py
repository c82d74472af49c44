"""Liveness and readiness: no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from interlock.api.deps import AppDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        503: {
            "description": "Not ready: `detail` says what is missing.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def readyz(app: AppDep) -> Any:
    """The database answers and a config is loaded."""
    try:
        with app.engine.db.read() as tx:
            latest = tx.latest_config()
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        return JSONResponse(
            {"status": "unavailable", "detail": f"database: {exc.__class__.__name__}"},
            status_code=503,
        )
    if latest is None:
        return JSONResponse(
            {"status": "unavailable", "detail": "no config loaded"}, status_code=503
        )
    return {"status": "ready", "config_version": latest.version, "database": app.engine.db.dialect}
