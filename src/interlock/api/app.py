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
    from interlock.api.routers import (
        approvals,
        artifacts,
        audit,
        config,
        deployments,
        environments,
        health,
        identity,
        releases,
        status,
    )

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
    app.include_router(health.router)
    for module in (
        releases,
        approvals,
        artifacts,
        deployments,
        status,
        environments,
        audit,
        config,
        identity,
    ):
        app.include_router(module.router, prefix="/api/v1")
    return app
