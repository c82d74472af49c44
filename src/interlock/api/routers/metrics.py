"""Delivery metrics: JSON under /api/v1/metrics, and /metrics for Prometheus.

Both need the permission ``metrics.read``. A rule that limits it to some
services or environments shows only those in ``/api/v1/metrics``;
``/metrics`` exposes every service and environment, so it needs a rule
without limits (typically for a service account whose token Prometheus sends
as ``authorization: {credentials_file: ...}`` in its scrape config).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from interlock.api.deps import AppDep, AppState, PrincipalDep
from interlock.api.text import Line
from interlock.engine.exposition import CONTENT_TYPE, DeliveryCollector
from interlock.engine.identity import Principal
from interlock.engine.metrics import (
    MetricsRequest,
    delivery_report,
    manual_steps_report,
    measured_environments,
    weekly_series,
)
from interlock.errors import Forbidden
from interlock.metrics.definitions import Definitions

router = APIRouter(tags=["metrics"])
exposition = APIRouter(tags=["metrics"])
_collector_lock = threading.Lock()


def metrics_request(
    service: Annotated[
        Line | None, Query(description="Only releases holding this service.")
    ] = None,
    env: Annotated[
        Line | None, Query(description="The environment measured (default: production ones).")
    ] = None,
    team: Annotated[Line | None, Query(description="Only the services this team owns.")] = None,
    since: Annotated[
        Line | None,
        Query(description="Start: 2024-05-01, an ISO time, or how long ago (30d). Default 90d."),
    ] = None,
    until: Annotated[
        Line | None, Query(description="End (exclusive; a bare date includes that day).")
    ] = None,
    frequency: Annotated[
        Literal["deployments", "days"],
        Query(description="Deployment frequency counts deployments or days with one."),
    ] = "deployments",
    frequency_unit: Annotated[Literal["day", "week", "month"], Query()] = "week",
    statistic: Annotated[
        Literal["median", "mean", "p90"],
        Query(description="How lead time, time to restore and schedule slip become one number."),
    ] = "median",
    restore: Annotated[
        Literal["incident", "deployment"],
        Query(description="Time to restore from incidents, or failed -> next good deployment."),
    ] = "incident",
    bands: Annotated[
        Literal["2021", "2023", "2024", "none"], Query(description="Which DORA report's bands.")
    ] = "2024",
    min_events: Annotated[int, Query(ge=1, le=100000)] = 5,
) -> MetricsRequest:
    return MetricsRequest(
        service=service,
        environment=env,
        team=team,
        since=since,
        until=until,
        definitions=Definitions.parse(
            statistic=statistic,
            frequency_unit=frequency_unit,
            frequency_count=frequency,
            restore_from=restore,
            bands=bands,
            min_events=min_events,
        ),
    )


RequestDep = Annotated[MetricsRequest, Depends(metrics_request)]


def _readable(app: AppState, who: Principal, request: MetricsRequest) -> set[str] | None:
    """Check ``metrics.read`` in every measured environment; the services it covers there."""
    environments, _ = measured_environments(app.configs.active().config, request.environment)
    services = [request.service] if request.service else None
    readable: set[str] | None = None
    for environment in environments:
        app.access.require(who, "metrics.read", environment=environment, services=services)
        covered = app.access.covered(who, "metrics.read", environment)
        if covered is not None:
            readable = set(covered) if readable is None else readable & covered
    return readable


@router.get("/metrics")
def metrics(app: AppDep, who: PrincipalDep, request: RequestDep) -> dict[str, Any]:
    """Every delivery and coordination metric: value, unit, n, definition and DORA band."""
    found = delivery_report(app.engine, request, readable=_readable(app, who, request))
    return found.as_dict()


@router.get("/metrics/series")
def metrics_series(
    app: AppDep,
    who: PrincipalDep,
    request: RequestDep,
    weeks: Annotated[int, Query(ge=1, le=52, description="How many weeks, ending at until.")] = 12,
) -> dict[str, Any]:
    """Every metric week by week (value, band, n), each week as /metrics answers it.

    The weeks end at ``until`` (default: the end of today, UTC); ``since`` is not taken.
    """
    readable = _readable(app, who, request)
    return weekly_series(app.engine, request, weeks=weeks, readable=readable)


@router.get("/metrics/manual-steps")
def manual_steps(
    app: AppDep,
    who: PrincipalDep,
    request: RequestDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    """Manual steps ranked by how often they run and how long people take to sign them off."""
    readable = _readable(app, who, request)
    return manual_steps_report(app.engine, request, readable=readable, limit=limit)


def collector_of(state: Any, app: AppState) -> DeliveryCollector:
    """One collector per application (per process): it keeps the summed history."""
    with _collector_lock:
        found: DeliveryCollector | None = getattr(state, "delivery_collector", None)
        if found is None:
            found = DeliveryCollector(app.engine)
            state.delivery_collector = found
    return found


@exposition.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
)
def prometheus(request: Request, app: AppDep, who: PrincipalDep) -> Response:
    """Delivery metrics for Prometheus; needs ``metrics.read`` for every service and environment."""
    environments = [e.name for e in app.configs.active().config.environments]
    for environment in [None, *environments]:
        app.access.require(who, "metrics.read", environment=environment)
        if app.access.covered(who, "metrics.read", environment) is not None:
            raise Forbidden(
                f"{who.name} may read metrics of some services or environments only; /metrics"
                " exposes all of them, so it needs a metrics.read rule without services: or"
                " environments: limits",
                action="metrics.read",
            )
    return Response(collector_of(request.app.state, app).exposition(), media_type=CONTENT_TYPE)
