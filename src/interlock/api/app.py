"""The FastAPI application."""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI

from interlock import __version__
from interlock.api import problems
from interlock.api.deps import AppState
from interlock.engine.configs import Configs
from interlock.engine.core import Engine

# The routers under /api/v1, one per resource (modules of interlock.api.routers).
ROUTERS = (
    "releases",
    "approvals",
    "artifacts",
    "deployments",
    "status",
    "environments",
    "recovery",
    "runbooks",
    "insight",
    "audit",
    "config",
    "identity",
    "metrics",
)


def create_app(engine: Engine, configs: Configs, config_path: Path | None = None) -> FastAPI:
    """Build the API around an engine; the caller runs workers and the scheduler."""
    app = FastAPI(
        title="Interlock",
        version=__version__,
        description="Release orchestration: releases, deployments, gates and the audit trail.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    from interlock.engine.access import Access
    from interlock.engine.identity import Identity

    app.state.interlock = AppState(
        engine=engine,
        configs=configs,
        config_path=config_path,
        identity=Identity(engine),
        access=Access(configs),
    )
    problems.install(app)
    from interlock.api.routers import health, metrics

    app.include_router(health.router)
    app.include_router(metrics.exposition)  # /metrics at the root, for Prometheus
    for name in ROUTERS:
        module = importlib.import_module(f"interlock.api.routers.{name}")
        app.include_router(module.router, prefix="/api/v1")
    return app
