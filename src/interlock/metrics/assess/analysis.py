"""``interlock assess``: from a team's spreadsheet, git and incidents to an assessment.

Reads the inputs, joins releases to tags, finds hotfixes, turns it all into
metric events, computes the metrics the data allows under stated definitions,
weighs the warning signs and picks the steps to take first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from interlock.errors import InvalidInput
from interlock.metrics.assess import signs as sign_rules
from interlock.metrics.assess.charts import release_charts
from interlock.metrics.assess.explain import assumptions, inputs_used, some_tags
from interlock.metrics.assess.history import History, read_history
from interlock.metrics.assess.inputs import (
    DEFAULT_SERVICE_SEPARATORS,
    RowProblem,
    read_incidents,
    read_releases,
)
from interlock.metrics.assess.links import DEFAULT_WINDOW, Link, link_incidents
from interlock.metrics.assess.model import Assessment
from interlock.metrics.assess.monorepo import ServicePaths, service_paths
from interlock.metrics.assess.releases import (
    Release,
    change_events,
    deployment_events,
    find_hotfixes,
    from_history,
    from_rows,
    heads,
    release_events,
    trains,
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
from interlock.metrics.events import ChangeEvent, IncidentEvent, Outcome
from interlock.metrics.facts import EventFacts, Window, zone_name
from interlock.metrics.results import MetricResult
from interlock.vcs import DEFAULT_TICKET_PATTERN


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
    service_separators: str = DEFAULT_SERVICE_SEPARATORS
    service_paths: tuple[str, ...] = ()  # --service-path NAME=GLOB
    since: datetime | None = None  # the period, since inclusive
    until: datetime | None = None  # and until exclusive
    lookback: timedelta = timedelta(days=30)  # commits of a series' first tag
    incident_window: timedelta = DEFAULT_WINDOW


def assess(options: AssessOptions, *, now: datetime | None = None) -> Assessment:
    """Read the inputs and assess them; raises :class:`InvalidInput` for unusable inputs."""
    if options.git is None and options.releases is None:
        raise InvalidInput("nothing to assess: give --releases SHEET, --git REPO, or both")
    if options.since and options.until and options.until <= options.since:
        raise InvalidInput(f"--until ({options.until}) is not after --since ({options.since})")
    zone = options.zone
    history = (
        read_history(
            options.git,
            options.tag_pattern,
            options.ticket_pattern,
            lookback=options.lookback,
            since=options.since,
        )
        if options.git
        else None
    )
    paths = service_paths(
        options.service_paths,
        (c for r in (history.releases if history else []) for c in r.commits),
    )
    notices: list[str] = []
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
            separators=options.service_separators,
        )
        problems += sheet.problems
        columns = sheet.columns
        if sheet.unused:
            notices.append(_unused(options.releases.name, sheet.unused))
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
                f" {some_tags(history.repo)}"
            )
    hotfixes = find_hotfixes(releases, options.hotfix_within, zone)
    incidents: list[IncidentEvent] = []
    links: list[Link] = []
    if options.incidents is not None:
        incident_sheet = read_incidents(options.incidents, zone=zone)
        problems += incident_sheet.problems
        if incident_sheet.unused:
            notices.append(_unused(options.incidents.name, incident_sheet.unused))
        incidents, links, linking = link_incidents(
            incident_sheet.incidents,
            releases,
            options.incidents.name,
            window=options.incident_window,
            separators=options.service_separators,
        )
        problems += linking
    definitions = options.definitions or Definitions(
        restore_from=RestoreFrom.INCIDENT if options.incidents else RestoreFrom.DEPLOYMENT
    )
    linked = {d for link in links for d in link.deployments}
    deployments = deployment_events(releases, hotfixes, linked)
    window = _period(options, releases, zone)
    every = releases  # the period filters deployments, not the commits they brought
    if window is not None:
        inside = [r for r in releases if window.contains(r.when.at)]
        outside = len(heads(releases)) - len(heads(inside))
        if outside:
            notices.append(
                f"{outside} release(s) outside the period {window.describe()} were left out"
            )
        early = sum(1 for i in incidents if not window.contains(i.opened_at))
        if early:
            notices.append(f"{early} incident(s) opened outside the period were left out")
        releases = inside
        hotfixes = [h for h in hotfixes if window.contains(h.fix.when.at)]
        if not releases:
            raise InvalidInput(f"no release falls in the period {window.describe()}")
    changes = change_events(every, paths, history)
    facts = EventFacts(
        deployments=deployments,
        changes=changes,
        incidents=incidents,
        releases=release_events(releases, zone),
        window=window,
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
    failed = {d.id for d in deployments if d.change_failure()}
    failed |= {i.deployment_id for i in incidents if i.deployment_id}
    metrics, not_measured = _metrics(
        facts,
        definitions,
        inputs,
        history,
        _Sources(concentration, paths, _per_release(releases, failed), _commits(changes, window)),
    )
    services = summaries(releases, hotfixes, failed, zone)
    period = facts.window
    return Assessment(
        generated_at=now or datetime.now(UTC),
        zone=zone_name(zone),
        inputs=inputs_used(
            options, history, columns, len(releases), len(incidents), len(heads(releases))
        ),
        assumptions=assumptions(options, history, releases, zone, paths),
        definitions=definitions.describe(),
        period=period.describe() if period else None,
        metrics=metrics,
        not_measured=not_measured,
        signs=signs,
        steps=next_steps(signs, services, releases),
        services=services,
        charts=release_charts(releases, zone, concentration),
        problems=problems,
        notices=notices,
        links=[str(link) for link in links],
    )


@dataclass(frozen=True)
class _Sources:
    """What the metrics' definitions say about how their figures were made."""

    concentration: MetricResult
    paths: ServicePaths
    per_release: str  # the change failure rate counted per release
    commits: str  # how many commits and (commit, service) pairs lead time rests on


def _commits(changes: list[ChangeEvent], window: Window | None) -> str:
    inside = [c for c in changes if window is None or window.contains(c.deployed_at)]
    pairs = {(c.service, c.sha) for c in inside}
    shas = {c.sha for c in inside}
    return f"{len(pairs)} (commit, service) pairs from {len(shas)} distinct commits"


def _per_release(releases: list[Release], failed: set[str]) -> str:
    groups = trains([r for r in releases if r.outcome is not Outcome.CANCELLED])
    bad = sum(1 for g in groups if any(r.id in failed for r in g))
    share = f" ({bad / len(groups):.0%})" if groups else ""
    return f"; per release (a row once): {bad} of {len(groups)}{share} had a change failure"


def _unused(file: str, headers: list[str]) -> str:
    shown = ", ".join(repr(h) for h in headers)
    return (
        f"{file}: column(s) {shown} were not read; if one holds a field, name it with"
        f" --map 'Header=field'"
    )


def _period(options: AssessOptions, releases: list[Release], zone: tzinfo) -> Window | None:
    """The period the user set (the data's first or last day fills an open end)."""
    if options.since is None and options.until is None:
        return None
    covering = Window.covering((r.when.at for r in releases), zone)
    assert covering is not None  # there are releases
    since = options.since or covering.since
    until = options.until or covering.until
    if until <= since:
        raise InvalidInput(f"the period from {since} to {until} is empty; check --since/--until")
    return Window(since, until, zone)


def _metrics(
    facts: EventFacts,
    definitions: Definitions,
    inputs: sign_rules.SignInputs,
    history: History | None,
    extra: _Sources,
) -> tuple[list[MetricResult], list[dict[str, str]]]:
    concentration, paths, per_release = extra.concentration, extra.paths, extra.per_release

    def sourced(result: MetricResult, source: str) -> MetricResult:
        return replace(result, definition=f"{result.definition}. Here: {source}")

    one_row = (
        "each service a spreadsheet row lists is one production deployment (a row listing"
        " three services counts three)"
        if inputs.from_sheet
        else "each tag is one production deployment, made when it was tagged"
    )
    window = facts.window
    rows = [r for r in inputs.rows() if r.outcome is Outcome.SUCCEEDED]
    if inputs.from_sheet and window is not None:
        unit = definitions.frequency_unit
        rate = len(rows) / window.days() * unit.days()
        one_row += (
            f"; per release (a row once): {len(rows)} successful releases, {rate:.2f} per"
            f" {unit.value}"
        )
    metrics = [sourced(deployment_frequency(facts, definitions), one_row)]
    missing: list[dict[str, str]] = []
    if history is not None:
        matched = sum(1 for r in inputs.releases if r.tagged is not None)
        source = (
            f"commit (committer) times from git; production times from the {matched} of"
            f" {len(inputs.releases)} deployments (services of spreadsheet rows) that match a tag"
            if inputs.from_sheet
            else "commit (committer) times from git; no spreadsheet, so this is commit to tag"
        )
        lookback = (
            f"from {history.since.date()}"
            if history.since
            else f"within {history.lookback.days} days before it"
        )
        source += (
            f"; each commit counts once per service whose paths it touched ({paths.describe()}),"
            " at that service's first deployment containing it; the first tag of each series"
            f" brings the commits made {lookback}; {extra.commits}"
        )
        metrics.append(sourced(lead_time(facts, definitions), source))
    else:
        missing.append({"title": "Lead time for changes", "why": "needs --git for commit times"})
    metrics.append(
        sourced(
            change_failure_rate(facts, definitions),
            "counted per deployment (a train of three services is three): deployments with"
            " outcome failed or rolled back, the deployments a hotfix repaired, and those an"
            " incident was linked to" + per_release,
        )
    )
    restore = (
        "counted per incident in the period, linked or not"
        if definitions.restore_from is RestoreFrom.INCIDENT
        else "counted per failing deployment (per service)"
    )
    metrics.append(sourced(time_to_restore(facts, definitions), restore))
    metrics.append(
        sourced(
            rework_rate(facts, definitions),
            "counted per deployment: the deployments of the hotfixes found (see the sign)",
        )
    )
    if "run_by" in inputs.columns:
        metrics.append(sourced(concentration, "counted per release: a row once"))
    else:
        missing.append(
            {"title": "Releases run by one person", "why": "no column says who ran a release"}
        )
    if "planned_date" in inputs.columns:
        metrics.append(
            sourced(schedule_slip(facts, definitions), "counted per release: a row once")
        )
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
