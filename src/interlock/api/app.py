"""The FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from interlock import __version__
from interlock.api import problems
from interlock.api.deps import AppState
from interlock.engine.configs import Configs
from interlock.engine.core import Engine


def create_app(engine: Engine, configs: Configs, config_path: Path | None = None) -> FastAPI:
    """Build the API around an engine; the caller runs workers and the scheduler."""
    from interlock.api.routers import audit, config, deployments, health, releases, status

    app = FastAPI(
        title="Interlock",
        version=__version__,
        description="Release orchestration: releases, deployments, gates and the audit trail.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.interlock = AppState(engine=engine, configs=configs, config_path=config_path)
    problems.install(app)
    app.include_router(health.router)
    for module in (releases, deployments, status, audit, config):
        app.include_router(module.router, prefix="/api/v1")
    return app
