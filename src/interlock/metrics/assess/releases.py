"""One list of releases from the spreadsheet and git, hotfixes found, and metric events built.

A spreadsheet row is one release: of one service, or of several (a train:
one production deployment per service, one release). When git is given too,
each deployment is joined to the tag its service and version name. Without a
spreadsheet, each tag is a release at the time it was tagged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from interlock.metrics.assess.dates import When
from interlock.metrics.assess.history import History, TaggedRelease, match_tag, semver
from interlock.metrics.assess.inputs import ReleaseRow
from interlock.metrics.assess.monorepo import REPOSITORY, ServicePaths
from interlock.metrics.assess.words import human_duration
from interlock.metrics.events import ChangeEvent, DeploymentEvent, Outcome, ReleaseEvent
from interlock.vcs import Commit

_HOTFIX_WORDS = re.compile(r"\bhot[\s-]?fix", re.IGNORECASE)


@dataclass(frozen=True)
class Release:
    """One production deployment of one service; ``release`` names the release it is part of."""

    id: str  # "row 7" (or "row 7 billing" in a train) for a spreadsheet row, else the tag name
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
    labels: str = ""
    release: str = ""  # the release (row) it is part of; its own id when empty

    @property
    def release_id(self) -> str:
        """The release this deployment belongs to: one spreadsheet row, or one tag."""
        return self.release or self.id


@dataclass(frozen=True)
class Hotfix:
    """A release made to repair an earlier one; the deployments it repaired failed."""

    fix: Release  # the first deployment of the fixing release
    broken: Release  # the first deployment of the release it repaired
    reason: str
    fixes: tuple[Release, ...] = ()  # every deployment of the fixing release (rework)
    repaired: tuple[Release, ...] = ()  # the deployments counted as change failures


def trains(releases: list[Release]) -> list[list[Release]]:
    """Deployments grouped by release (one spreadsheet row), in time order."""
    groups: dict[str, list[Release]] = {}
    for release in releases:
        groups.setdefault(release.release_id, []).append(release)
    return list(groups.values())


def heads(releases: list[Release]) -> list[Release]:
    """One deployment per release: for figures that count a release (a row) once."""
    return [group[0] for group in trains(releases)]


def from_rows(rows: list[ReleaseRow], history: History | None) -> list[Release]:
    """Releases from spreadsheet rows, joined to their tags when git is given."""
    index = history.by_name() if history else {}
    spelling: dict[str, str] = {}  # "Billing" and "billing " are one service: the first spelling
    rows = [
        replace(row, services=tuple(spelling.setdefault(n.lower(), n) for n in row.services))
        for row in rows
    ]
    releases = [
        Release(
            id=f"row {row.row}" if len(row.services) == 1 else f"row {row.row} {service}",
            service=service,
            version=row.version,
            when=row.when,
            run_by=row.run_by,
            approver=row.approver,
            planned=row.planned,
            notes=row.notes,
            outcome=row.outcome,
            row=row.row,
            tagged=match_tag(index, service, row.version),
            labels=row.labels,
            release=f"row {row.row}",
        )
        for row in rows
        for service in row.services
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
    """Releases made to repair an earlier release, and which deployments they repaired.

    ``X.Y.Z`` (Z > 0) repairs the latest earlier ``X.Y.<Z`` of its series (a
    release sharing a service, or tagged in the same tag series: ``v2.14.1``
    after ``v2.14.0`` whatever services each listed) when it came within
    ``within`` seconds. A release whose notes or labels say "hotfix" repairs
    the latest earlier ``X.Y.<Z`` of any service, else the latest earlier
    release sharing a service, else the latest earlier release. The repaired
    deployments are those of the services the fix ships, or all of the
    repaired release when it shares none.
    """
    live = trains([r for r in releases if r.outcome is not Outcome.CANCELLED])
    found: list[Hotfix] = []
    for index, train in enumerate(live):
        head = train[0]
        said = bool(_HOTFIX_WORDS.search(f"{head.notes} {head.labels} {head.version or ''}"))
        earlier = live[:index]
        fixed = _patched(train, earlier, within, zone, said)
        reason = ""
        if fixed is not None:
            gap = apart(fixed[0].when, head.when, zone)
            reason = f"{_name(train)} {head.version} {_words(gap)} after {fixed[0].version}"
            if said:
                reason += f" (notes of {head.release_id} say hotfix)"
        elif said and earlier:
            fixed = next((t for t in reversed(earlier) if _services(t) & _services(train)), None)
            fixed = fixed or earlier[-1]
            reason = f"notes of {head.release_id} say hotfix; it follows {fixed[0].release_id}"
        if fixed is None:
            continue
        shared = [r for r in fixed if r.service in _services(train)]
        found.append(Hotfix(head, fixed[0], reason, tuple(train), tuple(shared or fixed)))
    return found


def _services(train: list[Release]) -> set[str]:
    return {r.service for r in train}


def _name(train: list[Release]) -> str:
    return ", ".join(r.service for r in train)


def _patched(
    train: list[Release], earlier: list[list[Release]], within: float, zone: tzinfo, said: bool
) -> list[Release] | None:
    """The release ``train`` is a patch of, by version (see :func:`find_hotfixes`)."""
    new = semver(train[0].version)
    if new is None or new[2] == 0:
        return None
    series = {r.tagged.series for r in train if r.tagged is not None}
    fallback = None
    for candidate in reversed(earlier):
        old = semver(candidate[0].version)
        if old is None or old[:2] != new[:2] or old[2] >= new[2]:
            continue
        kin = _services(candidate) & _services(train) or series & {
            r.tagged.series for r in candidate if r.tagged is not None
        }
        gap = apart(candidate[0].when, train[0].when, zone)
        if kin and (said or 0 <= gap <= within):
            return candidate
        if said and fallback is None:
            fallback = candidate
    return fallback


def _words(seconds: float) -> str:
    return "the same day" if seconds == 0 else human_duration(seconds)


def deployment_events(
    releases: list[Release], hotfixes: list[Hotfix], linked: Iterable[str] = ()
) -> list[DeploymentEvent]:
    """One event per deployment; hotfixes are rework, what they repaired (and ``linked``,
    the deployments incidents were linked to) failed."""
    broken = {r.id for h in hotfixes for r in h.repaired} | set(linked)
    fixes = {r.id for h in hotfixes for r in h.fixes}
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


def change_events(
    releases: list[Release], paths: ServicePaths, history: History | None
) -> list[ChangeEvent]:
    """Each commit, once per service it touched, at that service's first deployment holding it.

    Per service and tag series, successful deployments in time order each
    bring the commits since the previous one (``git log previous..this``), so
    a tag that never went out, or whose deployment failed, hands its commits
    to the next deployment. The first deployment brings its tag's own commits.
    A deployment of a service whose paths are known keeps the commits that
    touched them, and those that touched no service's path (counted once for
    the repository); a service with no known paths takes every commit.
    """
    streams: dict[tuple[str, str], list[Release]] = {}
    for release in releases:
        if release.tagged is not None and release.outcome is Outcome.SUCCEEDED:
            key = (release.tagged.series, release.service.lower())
            streams.setdefault(key, []).append(release)
    changes = []
    for stream in streams.values():
        previous: TaggedRelease | None = None
        for release in sorted(stream, key=lambda r: r.when.at):
            tagged = release.tagged
            assert tagged is not None
            if previous is None or history is None:
                commits = tagged.commits
            else:
                commits = history.brought(previous, tagged)
            previous = tagged
            changes += _changes(release, commits, paths)
    return changes


def _changes(release: Release, commits: Iterable[Commit], paths: ServicePaths) -> list[ChangeEvent]:
    known = paths.knows(release.service)
    live_by = release.when.in_production_by()
    changes = []
    for commit in commits:
        service = release.service
        if known:
            touched = paths.touched(commit)
            if touched and release.service.lower() not in touched:
                continue
            service = release.service if touched else REPOSITORY
        changes.append(ChangeEvent(service, commit.sha, commit.committed_at, live_by))
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
    """Who ran each release (a row once) and, when planned, for when (see :func:`slip_times`)."""
    events = []
    for release in heads(releases):
        times = slip_times(release, zone)
        events.append(
            ReleaseEvent(
                id=release.release_id,
                at=release.when.at,
                run_by=release.run_by,
                planned_at=times[1] if times else None,
            )
        )
    return events
