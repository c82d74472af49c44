"""The FastAPI application."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from interlock import SERVER_HEADER, __version__
from interlock.api import openapi, problems
from interlock.api.bodies import BodyGuard, BodyLimits
from interlock.api.deps import AppState, known_query, principal
from interlock.api.oidc import Providers
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
    "events",
    "webhooks",
    "notifications",
    "abilities",
    "plans",
    "changes",
)


# ReDoc's standalone bundle draws its footer logo from cdn.redoc.ly; on a machine
# offline that is a hanging request, and nowhere should the docs reach another host.
DOCS_POLICY = (
    b"img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    b"frame-src 'none'; object-src 'none'"
)


class DocsPagesStayHere:
    """An ASGI wrapper that puts :data:`DOCS_POLICY` on /docs and /redoc: the browser
    fetches their images, fonts and data from this server only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in ("/docs", "/redoc"):
            await self.app(scope, receive, send)
            return

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"content-security-policy", DOCS_POLICY)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


def create_app(
    engine: Engine,
    configs: Configs,
    config_path: Path | None = None,
    *,
    warm_metrics: bool = False,
    body_limits: BodyLimits | None = None,
    lifespan: Lifespan[Any] | None = None,
) -> FastAPI:
    """Build the API around an engine; the caller runs workers and the scheduler.

    ``warm_metrics`` sums the ``/metrics`` history in the background now, so the
    first scrape is quick. ``body_limits``: the largest request body of each route
    (default :class:`BodyLimits`). ``lifespan``: what runs as the server starts and
    stops (the ASGI lifespan; ``interlock server`` starts and stops its runtime there).
    """
    # /docs and /redoc with Swagger UI and ReDoc served from the package, not a CDN.
    app = FastAPIOffline(
        title="Interlock",
        version=__version__,
        description="Release orchestration: releases, deployments, gates and the audit trail.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/docs/assets",
        lifespan=lifespan,
    )
    app.add_middleware(DocsPagesStayHere)
    from interlock.api.watch import ReleaseWatch
    from interlock.engine import views
    from interlock.engine.access import Access
    from interlock.engine.identity import Identity
    from interlock.engine.web_sessions import WebSessions

    watch = ReleaseWatch(functools.partial(views.release_revisions, engine))
    watch.detach = engine.db.on_release_change(watch.changed)
    app.state.interlock = AppState(
        engine=engine,
        configs=configs,
        config_path=config_path,
        identity=Identity(engine),
        access=Access(configs),
        watch=watch,
        sessions=WebSessions(engine),
        providers=Providers(),
    )
    problems.install(app)
    openapi.install(app)
    # Inside api_headers (added after it): its early 401 and 413 get the API's headers too.
    app.add_middleware(BodyGuard, limits=body_limits or BodyLimits(), authenticate=principal)

    @app.middleware("http")
    async def api_headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path.startswith("/api/"):
            # Answers hold release data and are personal to the caller's token.
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-store")
            # How the CLI knows it talks to Interlock, not some other service on the port.
            response.headers.setdefault(SERVER_HEADER, __version__)
        return response

    from interlock.api.routers import health, metrics

    app.include_router(health.router)
    app.include_router(metrics.exposition)  # /metrics at the root, for Prometheus
    from interlock.web.routes import router as web_ui

    app.include_router(web_ui)  # the web UI at /ui/ (and / redirects there)
    from interlock.api.sso import router as sso

    app.include_router(sso)  # /auth/...: single sign-on for the web UI, and sign-out
    from interlock.api.cli_login import router as cli_login

    app.include_router(cli_login)  # /auth/cli: `interlock login` through the browser
    from interlock.api.routers.notifications import pages as link_pages

    app.include_router(link_pages)  # /approve/{token}: the approval links in mail
    for name in ROUTERS:
        module = importlib.import_module(f"interlock.api.routers.{name}")
        app.include_router(module.router, prefix="/api/v1", dependencies=[Depends(known_query)])
    if warm_metrics:
        metrics.collector_of(app.state, app.state.interlock).warm_in_background()
    return app
