"""Incidents linked to the deployments that caused them, each link with its evidence.

An incident naming a version is linked to that release of its service. One
naming no version is linked to the latest production deployment of its
service that finished before it opened, within a window (7 days by default);
one naming no service, to the latest production release (every deployment of
that spreadsheet row). Linked deployments are change failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from interlock.metrics.assess.history import bare_version
from interlock.metrics.assess.inputs import IncidentRow, RowProblem, split_services
from interlock.metrics.assess.releases import Release, trains
from interlock.metrics.events import IncidentEvent, Outcome

DEFAULT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Link:
    """Why an incident was charged to a deployment: shown in the report as evidence."""

    incident: str
    opened: str
    deployments: tuple[str, ...]  # ids of the deployments charged
    service: str
    version: str | None
    deployed: str
    how: str  # "by version", "by time (same service)", "by time (no service: latest release)"

    def __str__(self) -> str:
        what = f"{self.service} {self.version or ''}".strip()
        return (
            f"{self.incident} (opened {self.opened}) -> {what}, deployed {self.deployed}"
            f" ({', '.join(self.deployments)}; {self.how})"
        )


def link_incidents(
    rows: list[IncidentRow],
    releases: list[Release],
    file: str,
    *,
    window: timedelta = DEFAULT_WINDOW,
    separators: str = ";,/+\n",
) -> tuple[list[IncidentEvent], list[Link], list[RowProblem]]:
    """Incident events, each linked to the deployment that caused it when one can be found."""
    live = [r for r in releases if r.outcome is not Outcome.CANCELLED]
    by_version = {(r.service.lower(), bare_version(r.version)): r for r in live if r.version}
    services = {r.service.lower() for r in live}
    only = next(iter(services)) if len(services) == 1 else ""
    events: list[IncidentEvent] = []
    links: list[Link] = []
    problems: list[RowProblem] = []
    for row in rows:
        named = [s.lower() for s in split_services(row.service or "", separators)] or (
            [only] if only else []
        )
        charged: list[Release] = []
        how = ""
        if row.version:
            version = bare_version(row.version)
            charged = [c for s in named if (c := by_version.get((s, version)))]
            if not named:  # one version for the whole repository: every deployment of it
                charged = [r for r in live if r.version and bare_version(r.version) == version]
            how = "by version"
            if not charged:
                problems.append(
                    RowProblem(
                        file,
                        row.row,
                        f"names release {row.service or ''} {row.version} which is not among"
                        " the releases; counted as an incident with no deployment",
                        row_used=True,
                    )
                )
        elif window > timedelta(0):
            unknown = [s for s in named if s not in services]
            if unknown and len(unknown) == len(named):
                problems.append(
                    RowProblem(
                        file,
                        row.row,
                        f"names service {row.service!r}, which no release row lists; not"
                        " linked to a deployment",
                        row_used=True,
                    )
                )
            charged, how = _by_time(row, named, live, window)
        if charged:
            first = charged[0]
            links.append(
                Link(
                    incident=row.id,
                    opened=row.opened.at.isoformat(timespec="minutes"),
                    deployments=tuple(c.id for c in charged),
                    service=", ".join(dict.fromkeys(c.service for c in charged)),
                    version=first.version,
                    deployed=first.when.at.isoformat(timespec="minutes"),
                    how=how,
                )
            )
        events.append(
            IncidentEvent(
                id=row.id,
                opened_at=row.opened.at,
                resolved_at=row.resolved.at if row.resolved else None,
                service=row.service,
                deployment_id=charged[0].id if charged else None,
            )
        )
    return events, links, problems


def _by_time(
    row: IncidentRow, named: list[str], live: list[Release], window: timedelta
) -> tuple[list[Release], str]:
    opened = row.opened.at
    before = [r for r in live if r.when.at <= opened and opened - r.when.at <= window]
    if named:
        charged = []
        for service in named:
            mine = [r for r in before if r.service.lower() == service]
            if mine:
                charged.append(max(mine, key=lambda r: r.when.at))
        return charged, f"by time: the latest deployment of the service within {_days(window)}"
    if not before:
        return [], ""
    latest = max(before, key=lambda r: r.when.at).release_id
    group = next(t for t in trains(before) if t[0].release_id == latest)
    return group, f"by time: no service named, the latest release within {_days(window)}"


def _days(window: timedelta) -> str:
    days = window.total_seconds() / 86400
    return f"{days:g} day{'s' if days != 1 else ''}"
