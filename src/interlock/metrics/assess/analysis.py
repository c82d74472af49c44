"""``interlock assess``: from a team's spreadsheet, git and incidents to an assessment.

Reads the inputs, joins releases to tags, finds hotfixes, turns it all into
metric events, computes the metrics the data allows under stated definitions,
weighs the warning signs and picks the steps to take first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from interlock.errors import InvalidInput
from interlock.metrics.assess import signs as sign_rules
from interlock.metrics.assess.history import History, read_history
from interlock.metrics.assess.inputs import RowProblem, read_incidents, read_releases
from interlock.metrics.assess.model import Assessment, Chart
from interlock.metrics.assess.releases import (
    Release,
    change_events,
    deployment_events,
    find_hotfixes,
    from_history,
    from_rows,
    incident_events,
    release_events,
)
from interlock.metrics.assess.steps import next_steps, summaries
from interlock.metrics.coordination import release_concentration, schedule_slip
from interlock.metrics.definitions import Definitions, RestoreFrom
from interlock.metrics.delivery import (
    change_failure_rate,
    deployment_frequency,
    lead_time,
    rework_rate,
    time_to_restore,
)
from interlock.metrics.events import IncidentEvent, Outcome
from interlock.metrics.facts import EventFacts, zone_name
from interlock.metrics.results import MetricResult
from interlock.vcs import DEFAULT_TICKET_PATTERN, tags


@dataclass(frozen=True)
class AssessOptions:
    """What to read and how; ``definitions`` None picks time to restore from the inputs."""

    git: Path | None = None
    tag_pattern: str = "*"
    releases: Path | None = None
    mapping: tuple[str, ...] = ()  # --map "Header=field" pairs
    sheet: str | None = None
    incidents: Path | None = None
    zone: tzinfo = UTC
    hotfix_within: float = 3 * 86400.0
    definitions: Definitions | None = None
    ticket_pattern: str = DEFAULT_TICKET_PATTERN
    service: str | None = None  # the service's name when the sheet has no service column


def assess(options: AssessOptions, *, now: datetime | None = None) -> Assessment:
    """Read the inputs and assess them; raises :class:`InvalidInput` for unusable inputs."""
    if options.git is None and options.releases is None:
        raise InvalidInput("nothing to assess: give --releases SHEET, --git REPO, or both")
    zone = options.zone
    history = (
        read_history(options.git, options.tag_pattern, options.ticket_pattern)
        if options.git
        else None
    )
    service = options.service or (history.repo.name if history else "app")
    problems: list[RowProblem] = []
    columns: dict[str, str] = {}
    if options.releases is not None:
        sheet = read_releases(
            options.releases,
            zone=zone,
            mapping=options.mapping,
            sheet=options.sheet,
            default_service=service,
        )
        problems += sheet.problems
        columns = sheet.columns
        releases = from_rows(sheet.releases, history)
        if not releases:
            raise InvalidInput(
                f"{options.releases}: no usable release rows",
                errors=[{"message": str(p)} for p in problems[:20]],
            )
    else:
        assert history is not None
        releases = from_history(history, service)
        if not releases:
            raise InvalidInput(
                f"no tags in {history.repo} match {options.tag_pattern!r};"
                f" {_some_tags(history.repo)}"
            )
    hotfixes = find_hotfixes(releases, options.hotfix_within, zone)
    incidents: list[IncidentEvent] = []
    if options.incidents is not None:
        incident_sheet = read_incidents(options.incidents, zone=zone)
        problems += incident_sheet.problems
        incidents, linking = incident_events(
            incident_sheet.incidents, releases, options.incidents.name
        )
        problems += linking
    definitions = options.definitions or Definitions(
        restore_from=RestoreFrom.INCIDENT if options.incidents else RestoreFrom.DEPLOYMENT
    )
    deployments = deployment_events(releases, hotfixes)
    facts = EventFacts(
        deployments=deployments,
        changes=change_events(releases),
        incidents=incidents,
        releases=release_events(releases, zone),
        zone=zone,
    )
    from_sheet = options.releases is not None
    inputs = sign_rules.SignInputs(
        releases=releases,
        hotfixes=hotfixes,
        zone=zone,
        min_events=definitions.min_events,
        from_sheet=from_sheet,
        has_git=history is not None,
        columns=frozenset(columns),
    )
    concentration = release_concentration(facts, definitions)
    signs = [
        sign_rules.one_person(inputs, concentration),
        sign_rules.together(inputs),
        sign_rules.weekly_slot(inputs),
        sign_rules.tag_gap(inputs),
        sign_rules.no_approver(inputs),
        sign_rules.slips(inputs),
        sign_rules.hotfixes(inputs, options.hotfix_within),
        sign_rules.irregular(inputs),
    ]
    metrics, not_measured = _metrics(facts, definitions, inputs, history, concentration)
    failed = {d.id for d in deployments if d.change_failure()}
    failed |= {i.deployment_id for i in incidents if i.deployment_id}
    services = summaries(releases, hotfixes, failed, zone)
    window = facts.window
    return Assessment(
        generated_at=now or datetime.now(UTC),
        zone=zone_name(zone),
        inputs=_inputs(options, history, columns, len(releases), len(incidents)),
        assumptions=_assumptions(options, history, releases, zone),
        definitions=definitions.describe(),
        period=window.describe() if window else None,
        metrics=metrics,
        not_measured=not_measured,
        signs=signs,
        steps=next_steps(signs, services, releases),
        services=services,
        charts=_charts(releases, zone, concentration),
        problems=problems,
    )


def _metrics(
    facts: EventFacts,
    definitions: Definitions,
    inputs: sign_rules.SignInputs,
    history: History | None,
    concentration: MetricResult,
) -> tuple[list[MetricResult], list[dict[str, str]]]:
    def sourced(result: MetricResult, source: str) -> MetricResult:
        return replace(result, definition=f"{result.definition}. Here: {source}")

    one_row = (
        "each spreadsheet row is one production deployment"
        if inputs.from_sheet
        else "each tag is one production deployment, made when it was tagged"
    )
    metrics = [sourced(deployment_frequency(facts, definitions), one_row)]
    missing: list[dict[str, str]] = []
    if history is not None:
        matched = sum(1 for r in inputs.releases if r.tagged is not None)
        source = (
            f"commit (committer) times from git; production times from the {matched} of"
            f" {len(inputs.releases)} spreadsheet rows that match a tag"
            if inputs.from_sheet
            else "commit (committer) times from git; no spreadsheet, so this is commit to tag"
        )
        source += "; the first tag of each series is left out (no earlier tag to count from)"
        metrics.append(sourced(lead_time(facts, definitions), source))
    else:
        missing.append({"title": "Lead time for changes", "why": "needs --git for commit times"})
    metrics.append(
        sourced(
            change_failure_rate(facts, definitions),
            "failures are rows with outcome failed or rolled back, releases a hotfix followed,"
            " and releases an incident names by version",
        )
    )
    metrics.append(time_to_restore(facts, definitions))
    metrics.append(
        sourced(rework_rate(facts, definitions), "rework is the hotfixes found (see the sign)")
    )
    if "run_by" in inputs.columns:
        metrics.append(concentration)
    else:
        missing.append(
            {"title": "Releases run by one person", "why": "no column says who ran a release"}
        )
    if "planned_date" in inputs.columns:
        metrics.append(schedule_slip(facts, definitions))
    else:
        missing.append({"title": "Schedule slip", "why": "no planned date column"})
    missing += [
        {
            "title": "Pipeline run frequency",
            "why": "a spreadsheet lists releases, not pipeline runs; Interlock records every run",
        },
        {
            "title": "Approval wait",
            "why": "the inputs say who approved, not when approval was asked for and given",
        },
        {
            "title": "Share of manual steps",
            "why": "steps are not in the inputs; the notes column hints at them (see the steps)",
        },
    ]
    return metrics, missing


def _inputs(
    options: AssessOptions,
    history: History | None,
    columns: dict[str, str],
    releases: int,
    incidents: int,
) -> dict[str, Any]:
    return {
        "git": str(history.repo) if history else None,
        "tag_pattern": options.tag_pattern if history else None,
        "tags": len(history.releases) if history else None,
        "releases": str(options.releases) if options.releases else None,
        "columns": columns,
        "release_count": releases,
        "incidents": str(options.incidents) if options.incidents else None,
        "incident_count": incidents,
    }


def _assumptions(
    options: AssessOptions, history: History | None, releases: list[Release], zone: tzinfo
) -> list[str]:
    from interlock.domain.durations import format_duration

    name = zone_name(zone)
    notes = [
        f"Dates and times with no time zone are read as {name}"
        + (" (the default; choose another with --timezone)." if name == "UTC" else "."),
        f"Calendar days, weekdays and hours are counted in {name}.",
        "A date without a time of day counts for that day; for lead time and tag to"
        " production the release is taken as live by the end of that day.",
        f"A hotfix is a patch version (same major.minor, higher patch) of a service within"
        f" {format_duration(options.hotfix_within)} of its previous release, or a release"
        " whose notes say hotfix; the release it follows counts as a change failure.",
    ]
    if options.releases is not None:
        notes.append("Each spreadsheet row is one production deployment of one service.")
    elif history is not None:
        notes.append(
            f"No spreadsheet: each tag matching {options.tag_pattern!r} is taken as a production"
            " release at the moment it was tagged."
        )
    if history is not None:
        notes.append(
            "Commit time is the committer date. Tags are grouped into series by the text"
            " before their version (payments-v1.2.0 -> payments); in a monorepo the commits"
            " between two tags include every commit in between."
        )
        if not history.releases:
            notes.append(
                f"No tag in {history.repo} matches {options.tag_pattern!r}, so lead time"
                f" cannot be measured; {_some_tags(history.repo)}."
            )
        if options.releases is not None:
            unmatched = sum(1 for r in releases if r.tagged is None)
            notes.append(
                f"{len(releases) - unmatched} of {len(releases)} release rows matched a tag by"
                " service and version; the others count for everything but lead time and"
                " tag to production."
            )
    if options.incidents is not None:
        notes.append(
            "An incident is linked to a release only when it names that release's version;"
            " the others still count for time to restore."
        )
    notes.append(
        "DORA bands are the published ranges read as limits, made monotone; see docs/metrics.md."
    )
    return notes


def _some_tags(repo: Path) -> str:
    names = [tag.name for tag in tags(repo)]
    if not names:
        return "the repository has no tags at all"
    shown = ", ".join(names[-10:])
    return f"the newest tags there are: {shown}; choose them with --tag-pattern"


def _charts(releases: list[Release], zone: tzinfo, concentration: MetricResult) -> list[Chart]:
    live = [r for r in releases if r.outcome is not Outcome.CANCELLED]
    days = [r.when.day(zone) for r in live]
    charts: list[Chart] = []
    if days:
        first, last = min(days), max(days)
        weekly = (last - first).days <= 7 * 104
        if weekly:
            start = first - timedelta(days=first.weekday())
            buckets = Counter(d - timedelta(days=d.weekday()) for d in days)
            labels, values = [], []
            while start <= last:
                labels.append(start.isoformat())
                values.append(float(buckets.get(start, 0)))
                start += timedelta(days=7)
            title, note = "Releases per week", "weeks start on Monday"
        else:
            months = Counter(d.strftime("%Y-%m") for d in days)
            labels = sorted(months)
            values = [float(months[m]) for m in labels]
            title, note = "Releases per month", ""
        charts.append(Chart("per_week" if weekly else "per_month", title, labels, values, note))
        weekdays = Counter(d.weekday() for d in set(days))
        charts.append(
            Chart(
                "weekday",
                "Release days by weekday",
                list(sign_rules.WEEKDAYS),
                [float(weekdays.get(i, 0)) for i in range(7)],
                f"days with at least one release, in {zone_name(zone)}",
            )
        )
    people = concentration.details.get("people") or []
    if people:
        top = people[:10]
        charts.append(
            Chart(
                "people",
                "Releases by the person who ran them",
                [p["person"] for p in top],
                [float(p["releases"]) for p in top],
                "the ten who ran the most" if len(people) > 10 else "",
            )
        )
    return charts
