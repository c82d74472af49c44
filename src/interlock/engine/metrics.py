"""Delivery metrics from Interlock's own records: what is measured, when, and how.

A :class:`MetricsRequest` (service, environment, team, period and the
definition settings) becomes a :class:`~interlock.storage.metrics.MetricScope`
here, and the storage layer answers the metric library's questions with SQL
inside one read transaction. Every number comes back with its definition.

The measured environments are the one asked for, else those marked
``production: true`` (else the last of the chain). The period is ``[since,
until)``: by default the 90 days up to now, and never before the day of the
first recorded deployment, because a period that starts before the records
would dilute every rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from interlock.domain.bounds import MAX_LOOKBACK
from interlock.domain.durations import DurationTooLong, parse_duration
from interlock.engine.core import Engine
from interlock.errors import Forbidden, InvalidInput
from interlock.metrics.coordination import coordination_metrics
from interlock.metrics.definitions import Definitions
from interlock.metrics.delivery import delivery_metrics
from interlock.metrics.results import Kind, MetricResult, format_value
from interlock.spec.model import Config
from interlock.storage.metrics import MetricScope, SqlDeliveryFacts

DEFAULT_DAYS = 90
UNITS = {"duration": "seconds", "ratio": "fraction", "count": "count"}

# What each library definition means in Interlock's records, appended to it.
IN_THE_RECORDS = {
    "deployment_frequency": "deployments of kind deploy or rollback, at their finish",
    "lead_time": (
        "commit time from the artifact registered by CI (--committed-at); a version"
        " already deployed before the period is not counted again"
    ),
    "change_failure_rate": (
        "failed = ended failed or rolled_back; caused a failure = an incident names it"
    ),
    "rework_rate": (
        "unplanned = every rollback, and every deploy started while an incident was open"
        " for one of its services in that environment"
    ),
    "pipeline_run_frequency": (
        "a pipeline is a service's deploy (or rollback) pipeline; runs that ended in the period"
    ),
    "approval_wait_p50": "approval gates, from the gate starting to wait to its decision",
    "approval_wait_p90": "approval gates, from the gate starting to wait to its decision",
    "manual_step_share": (
        "manual steps of pipelines and runbook runs (the runbook step that starts a run"
        " is not counted; the run's steps are)"
    ),
    "release_concentration": (
        "the person who created each release, or on whose behalf CI did; service"
        " accounts count as nobody"
    ),
    "schedule_slip": (
        "scheduled releases planned in the period: their first deployment's start minus"
        " the planned time, wherever the route begins"
    ),
}


@dataclass(frozen=True)
class MetricsRequest:
    """What someone asked to measure, as they typed it."""

    service: str | None = None
    environment: str | None = None
    team: str | None = None
    since: str | None = None
    until: str | None = None
    definitions: Definitions = field(default_factory=Definitions)


@dataclass(frozen=True)
class MetricsReport:
    request: MetricsRequest
    scope: MetricScope
    period: str
    notes: tuple[str, ...]
    metrics: tuple[MetricResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the scope, the settings in words and every metric."""
        return {
            "scope": scope_dict(self.request, self.scope, self.period),
            "definitions": self.request.definitions.describe(),
            "settings": settings_dict(self.request.definitions),
            "notes": list(self.notes),
            "metrics": [metric_dict(m) for m in self.metrics],
        }


def metric_dict(result: MetricResult) -> dict[str, Any]:
    data = result.as_dict()
    data["unit"] = result.unit or UNITS.get(result.kind.value, "")
    return data


def settings_dict(definitions: Definitions) -> dict[str, Any]:
    return {
        "statistic": definitions.statistic.value,
        "frequency": definitions.frequency_count.value,
        "frequency_unit": definitions.frequency_unit.value,
        "restore": definitions.restore_from.value,
        "bands": definitions.bands.value,
        "min_events": definitions.min_events,
    }


def scope_dict(request: MetricsRequest, scope: MetricScope, period: str) -> dict[str, Any]:
    return {
        "environments": list(scope.environments),
        "services": list(scope.services) if scope.services is not None else None,
        "service": request.service,
        "team": request.team,
        "since": scope.since.isoformat(),
        "until": scope.until.isoformat(),
        "period": period,
    }


def parse_instant(value: str, *, now: datetime, end: bool, what: str) -> datetime:
    """``2024-05-01``, an ISO time (UTC unless it says), ``now``, or ``30d`` (that long ago).

    A bare date as the end of a period means the end of that day.
    """
    text = value.strip()
    if text.lower() == "now":
        return now
    try:
        return now - timedelta(seconds=parse_duration(text, maximum=MAX_LOOKBACK))
    except DurationTooLong as exc:
        raise InvalidInput(f"--{what}: {exc}", field=what) from None
    except ValueError:
        pass
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        if end and day == date.max:
            return datetime.max.replace(tzinfo=UTC)  # the day after 9999-12-31 has no date
        return start + timedelta(days=1) if end else start
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--{what} {value!r} is not a date: write 2024-05-01, 2024-05-01T09:00:00Z,"
            " now, or how long ago, like 30d",
            field=what,
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def measured_environments(
    config: Config, environment: str | None
) -> tuple[tuple[str, ...], list[str]]:
    """The environment asked for, else those marked ``production: true``, else the last."""
    names = [e.name for e in config.environments]
    if environment:
        if environment not in names:
            raise InvalidInput(
                f"no environment named {environment!r} (known: {', '.join(names)})",
                field="env",
            )
        return (environment,), []
    production = tuple(e.name for e in config.environments if e.production)
    if production:
        return production, []
    note = f"no environment is marked production: true; measuring the last one, {names[-1]}"
    return (names[-1],), [note]


def _day_start(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date(), time(0), tzinfo=UTC)


def resolve_scope(
    config: Config,
    request: MetricsRequest,
    *,
    now: datetime,
    first_record: datetime | None,
    readable: set[str] | None = None,
) -> tuple[MetricScope, list[str]]:
    """The environments, services and period to measure, and notes on how they were chosen."""
    environments, notes = measured_environments(config, request.environment)
    services = _services(config, request, readable)
    until = parse_instant(request.until, now=now, end=True, what="until") if request.until else now
    if request.since:
        since = parse_instant(request.since, now=now, end=False, what="since")
    else:
        since = until - timedelta(days=DEFAULT_DAYS)
    if until <= since:
        raise InvalidInput(
            f"the period ends ({until.isoformat()}) before it starts ({since.isoformat()})",
            field="until",
        )
    if first_record is not None:
        begins = _day_start(first_record)
        if since < begins < until:
            notes.append(
                f"the period starts on {begins.date()}, when Interlock's records begin"
                f" (asked: {since.date()})"
            )
            since = begins
    scope = MetricScope(
        environments=environments,
        since=since,
        until=until,
        services=services,
        complete=first_record is None or since <= first_record,
        unplaced_runbooks=not request.environment,
    )
    return scope, notes


def _services(
    config: Config, request: MetricsRequest, readable: set[str] | None
) -> tuple[str, ...] | None:
    chosen: set[str] | None = None
    if request.service:
        if request.service not in config.services:
            known = ", ".join(sorted(config.services))
            raise InvalidInput(
                f"no service named {request.service!r} (known: {known})", field="service"
            )
        chosen = {request.service}
    if request.team:
        owned = {name for name, s in config.services.items() if s.owner == request.team}
        if not owned:
            raise InvalidInput(
                f"team {request.team!r} owns no service (a service names its team with"
                " `owner:` in interlock.yaml)",
                field="team",
            )
        chosen = owned if chosen is None else chosen & owned
        if not chosen:
            raise InvalidInput(
                f"service {request.service!r} is not owned by team {request.team!r}",
                field="team",
            )
    if readable is not None:
        if chosen is not None and not chosen & readable:
            raise Forbidden(
                f"no metrics.read permission covers {', '.join(sorted(chosen))}",
                action="metrics.read",
            )
        chosen = (set(config.services) if chosen is None else chosen) & readable
    return None if chosen is None else tuple(sorted(chosen))


def _in_the_records(result: MetricResult, unknown_commits: int) -> MetricResult:
    extra = IN_THE_RECORDS.get(result.key)
    definition = f"{result.definition}; {extra}" if extra else result.definition
    if result.key == "lead_time" and unknown_commits:
        definition += (
            f"; {unknown_commits} deployed change(s) have no commit time and are not counted"
        )
    return replace(result, definition=definition)


@contextmanager
def _facts(
    engine: Engine, request: MetricsRequest, readable: set[str] | None
) -> Iterator[tuple[MetricScope, list[str], SqlDeliveryFacts]]:
    """The scope of ``request``, its notes, and its facts inside one read transaction."""
    config = engine.configs.active().config
    now = engine.clock.now()
    with engine.db.read() as tx:
        scope, notes = resolve_scope(
            config, request, now=now, first_record=tx.first_record_at(), readable=readable
        )
        yield scope, notes, tx.delivery_facts(scope)


def delivery_report(
    engine: Engine, request: MetricsRequest, *, readable: set[str] | None = None
) -> MetricsReport:
    """Every delivery and coordination metric for the request, from the database."""
    with _facts(engine, request, readable) as (scope, notes, facts):
        results = [
            *delivery_metrics(facts, request.definitions),
            *coordination_metrics(facts, request.definitions),
        ]
        unknown = facts.lead_time_unknown
    return MetricsReport(
        request=request,
        scope=scope,
        period=facts.window.describe(),
        notes=tuple(notes),
        metrics=tuple(_in_the_records(r, unknown) for r in results),
    )


def manual_steps_report(
    engine: Engine,
    request: MetricsRequest,
    *,
    readable: set[str] | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """Manual steps worth automating first: how often they run, how long sign-off takes.

    ``more`` says that steps beyond the ``limit`` first were left out.
    """
    unit = request.definitions.frequency_unit
    with _facts(engine, request, readable) as (scope, notes, facts):
        ranked = facts.manual_steps(limit + 1)
    more = len(ranked) > limit
    ranked = ranked[:limit]
    days = facts.window.days()
    steps = []
    for rank, runbook, waiting in ranked:
        steps.append(
            {
                "step": rank.name,
                "runbook": runbook,
                "runs": rank.runs,
                "per_unit": rank.runs / days * unit.days() if days else None,
                "signed_off": rank.signed_off,
                "waiting": waiting,
                "median_signoff": rank.median_signoff,
                "median_signoff_display": _duration(rank.median_signoff),
                "total_signoff": rank.total_signoff,
                "total_signoff_display": _duration(rank.total_signoff),
            }
        )
    return {
        "scope": scope_dict(request, scope, facts.window.describe()),
        "notes": notes,
        "unit": unit.value,
        "definition": (
            "manual steps (a person signs them off) of pipelines and runbook runs that ended"
            " in the period or are still waiting, most costly first: by the total time people"
            " took to sign them off (how often x how long), then by runs; sign-off time is"
            " from the step starting to wait to its sign-off"
        ),
        "steps": steps,
        "more": more,
    }


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_value(seconds, Kind.DURATION)


MAX_SERIES_WEEKS = 52


def weekly_series(
    engine: Engine,
    request: MetricsRequest,
    *,
    weeks: int,
    readable: set[str] | None = None,
) -> dict[str, Any]:
    """Every metric for each of the last ``weeks`` weeks, in one read transaction.

    The weeks end at ``request.until`` (default: the start of tomorrow, UTC, so today
    is in the last week) and each is ``[since, since + 7 days)``. Each week's values
    are exactly what ``/metrics`` answers for that week: the same scope rules, the
    same definitions. ``request.since`` must be empty (the weeks say where it starts).
    """
    if request.since:
        raise InvalidInput(
            "a weekly series starts `weeks` weeks before `until`; leave `since` out",
            field="since",
        )
    if not 1 <= weeks <= MAX_SERIES_WEEKS:
        raise InvalidInput(f"weeks must be 1 to {MAX_SERIES_WEEKS}", field="weeks")
    config = engine.configs.active().config
    now = engine.clock.now()
    if request.until:
        end = parse_instant(request.until, now=now, end=True, what="until")
    else:
        end = _day_start(now) + timedelta(days=1)
    spans = [
        (end - timedelta(days=7 * (i + 1)), end - timedelta(days=7 * i))
        for i in reversed(range(weeks))
    ]
    series: dict[str, dict[str, Any]] = {}
    periods: list[dict[str, str]] = []
    scope_of_all: dict[str, Any] | None = None
    with engine.db.read() as tx:
        first = tx.first_record_at()
        for since, until in spans:
            week = replace(request, since=since.isoformat(), until=until.isoformat())
            scope, _ = resolve_scope(config, week, now=now, first_record=first, readable=readable)
            facts = tx.delivery_facts(scope)
            results = [
                *delivery_metrics(facts, request.definitions),
                *coordination_metrics(facts, request.definitions),
            ]
            periods.append({"since": since.isoformat(), "until": until.isoformat()})
            if scope_of_all is None:
                scope_of_all = scope_dict(request, scope, facts.window.describe())
            for result in results:
                one = series.setdefault(
                    result.key,
                    {
                        "key": result.key,
                        "title": result.title,
                        "kind": result.kind.value,
                        "unit": result.unit or UNITS.get(result.kind.value, ""),
                        "weeks": [],
                    },
                )
                one["weeks"].append(
                    {
                        "since": since.isoformat(),
                        "until": until.isoformat(),
                        "value": result.value,
                        "display": result.display(),
                        "band": result.band,
                        "n": result.n,
                    }
                )
    return {
        "scope": scope_of_all,
        "settings": settings_dict(request.definitions),
        "weeks": periods,
        "metrics": list(series.values()),
    }
