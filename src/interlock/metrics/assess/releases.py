"""One list of releases from the spreadsheet and git, hotfixes found, and metric events built.

A spreadsheet row is a release of one service; when git is given too, the row
is joined to the tag its service and version name. Without a spreadsheet, each
tag is a release at the time it was tagged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from interlock.metrics.assess.dates import When
from interlock.metrics.assess.history import History, TaggedRelease, match_tag, semver
from interlock.metrics.assess.inputs import IncidentRow, ReleaseRow, RowProblem
from interlock.metrics.events import (
    ChangeEvent,
    DeploymentEvent,
    IncidentEvent,
    Outcome,
    ReleaseEvent,
)

_HOTFIX_WORDS = re.compile(r"\bhot[\s-]?fix", re.IGNORECASE)


@dataclass(frozen=True)
class Release:
    id: str  # "row 7" for a spreadsheet row, the tag name for a tag
    service: str
    version: str | None
    when: When
    run_by: str | None = None
    approver: str | None = None
    planned: When | None = None
    notes: str = ""
    outcome: Outcome = Outcome.SUCCEEDED
    row: int | None = None
    tagged: TaggedRelease | None = None


@dataclass(frozen=True)
class Hotfix:
    fix: Release
    broken: Release  # the release the fix repaired: counted as a change failure
    reason: str


def from_rows(rows: list[ReleaseRow], history: History | None) -> list[Release]:
    """Releases from spreadsheet rows, joined to their tags when git is given."""
    index = history.by_name() if history else {}
    releases = [
        Release(
            id=f"row {row.row}",
            service=row.service,
            version=row.version,
            when=row.when,
            run_by=row.run_by,
            approver=row.approver,
            planned=row.planned,
            notes=row.notes,
            outcome=row.outcome,
            row=row.row,
            tagged=match_tag(index, row.service, row.version),
        )
        for row in rows
    ]
    return sorted(releases, key=lambda r: (r.when.at, r.row or 0))


def from_history(history: History, default_service: str) -> list[Release]:
    """Releases from tags alone: each tag is taken to reach production when it was made."""
    return [
        Release(
            id=tagged.tag.name,
            service=tagged.series or default_service,
            version=tagged.version,
            when=When(tagged.tag.tagged_at, True, True),
            tagged=tagged,
        )
        for tagged in history.releases
    ]


def apart(a: When, b: When, zone: tzinfo) -> float:
    """Seconds from ``a`` to ``b``; whole calendar days when either has no time of day."""
    if a.has_time and b.has_time:
        return (b.at - a.at).total_seconds()
    return (b.day(zone) - a.day(zone)).days * 86400.0


def find_hotfixes(releases: list[Release], within: float, zone: tzinfo) -> list[Hotfix]:
    """Patch releases soon after a release of the same service, and releases noted as hotfixes.

    ``1.4.1`` within ``within`` seconds of ``1.4.0`` (same major and minor,
    higher patch) is a hotfix; so is a release whose notes say "hotfix". The
    release before it is taken to have failed.
    """
    by_service: dict[str, list[Release]] = defaultdict(list)
    for release in releases:
        if release.outcome is not Outcome.CANCELLED:
            by_service[release.service].append(release)
    found: list[Hotfix] = []
    for stream in by_service.values():
        for before, after in zip(stream, stream[1:], strict=False):
            old, new = semver(before.version), semver(after.version)
            gap = apart(before.when, after.when, zone)
            if old and new and old[:2] == new[:2] and new[2] > old[2] and 0 <= gap <= within:
                reason = f"patch {after.version} {_words(gap)} after {before.version}"
            elif _HOTFIX_WORDS.search(after.notes):
                reason = f"notes of {after.id} say hotfix"
            else:
                continue
            found.append(Hotfix(after, before, reason))
    return found


def _words(seconds: float) -> str:
    from interlock.domain.durations import format_duration

    return "the same day" if seconds == 0 else format_duration(seconds)


def deployment_events(releases: list[Release], hotfixes: list[Hotfix]) -> list[DeploymentEvent]:
    """One production deployment per release; hotfixes are rework, what they fixed failed."""
    broken = {h.broken.id for h in hotfixes}
    fixes = {h.fix.id for h in hotfixes}
    return [
        DeploymentEvent(
            id=r.id,
            service=r.service,
            at=r.when.at,
            outcome=r.outcome,
            version=r.version,
            deployed_by=r.run_by,
            approved_by=r.approver,
            caused_failure=r.id in broken,
            rework=r.id in fixes,
        )
        for r in releases
    ]


def change_events(releases: list[Release]) -> list[ChangeEvent]:
    """Each commit a tagged release brought, in production by the end of the release."""
    changes = []
    for release in releases:
        if release.tagged is None or release.outcome is not Outcome.SUCCEEDED:
            continue
        for commit in release.tagged.commits:
            changes.append(
                ChangeEvent(
                    release.service,
                    commit.sha,
                    commit.committed_at,
                    release.when.in_production_by(),
                )
            )
    return changes


def slip_times(release: Release, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """(actual, planned) compared like for like: both at midnight when either has no time."""
    if release.planned is None:
        return None
    if release.when.has_time and release.planned.has_time:
        return release.when.at, release.planned.at
    return release.when.at, release.when.at - timedelta(
        seconds=apart(release.planned, release.when, zone)
    )


def release_events(releases: list[Release], zone: tzinfo) -> list[ReleaseEvent]:
    """Who ran each release and, when planned, for when (see :func:`slip_times`)."""
    events = []
    for release in releases:
        times = slip_times(release, zone)
        events.append(
            ReleaseEvent(
                id=release.id,
                at=release.when.at,
                run_by=release.run_by,
                planned_at=times[1] if times else None,
            )
        )
    return events


def incident_events(
    rows: list[IncidentRow], releases: list[Release], file: str
) -> tuple[list[IncidentEvent], list[RowProblem]]:
    """Incidents, each linked to the release its service and version name (if it names one)."""
    by_version = {(r.service.lower(), _bare(r.version)): r.id for r in releases if r.version}
    services = {r.service.lower() for r in releases}
    only = next(iter(services)) if len(services) == 1 else ""
    events: list[IncidentEvent] = []
    problems: list[RowProblem] = []
    for row in rows:
        culprit = None
        if row.version:
            service = (row.service or only).lower()
            culprit = by_version.get((service, _bare(row.version)))
            if culprit is None:
                problems.append(
                    RowProblem(
                        file,
                        row.row,
                        f"names release {row.service or ''} {row.version} which is not among"
                        " the releases; counted as an incident with no deployment",
                        row_used=True,
                    )
                )
        events.append(
            IncidentEvent(
                id=row.id,
                opened_at=row.opened.at,
                resolved_at=row.resolved.at if row.resolved else None,
                service=row.service,
                deployment_id=culprit,
            )
        )
    return events, problems


def _bare(version: str | None) -> str:
    text = (version or "").strip().lower()
    return text[1:] if text.startswith("v") and text[1:2].isdigit() else text
