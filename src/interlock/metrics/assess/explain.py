"""How the assessment was made, in words: the inputs used and every assumption applied."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.metrics.assess.history import History
from interlock.metrics.assess.monorepo import ServicePaths
from interlock.metrics.assess.releases import Release, trains
from interlock.metrics.assess.words import human_duration
from interlock.metrics.facts import zone_name
from interlock.vcs import tags

if TYPE_CHECKING:
    from interlock.metrics.assess.analysis import AssessOptions


def inputs_used(
    options: AssessOptions,
    history: History | None,
    columns: dict[str, str],
    releases: int,
    incidents: int,
    rows: int,
) -> dict[str, Any]:
    """What was read, for the report and the JSON."""
    return {
        "git": str(history.repo) if history else None,
        "tag_pattern": options.tag_pattern if history else None,
        "tags": len(history.releases) if history else None,
        "releases": str(options.releases) if options.releases else None,
        "columns": columns,
        "release_count": releases,  # deployments: a train of three services counts three
        "release_rows": rows,
        "incidents": str(options.incidents) if options.incidents else None,
        "incident_count": incidents,
    }


def assumptions(
    options: AssessOptions,
    history: History | None,
    releases: list[Release],
    zone: tzinfo,
    paths: ServicePaths,
) -> list[str]:
    """Every rule the figures rest on, with the setting that changes it."""
    name = zone_name(zone)
    separators = ", ".join(repr(c) for c in options.service_separators)
    notes = [
        f"Dates and times with no time zone are read as {name}"
        + (" (the default; choose another with --timezone)." if name == "UTC" else "."),
        f"Calendar days, weekdays and hours are counted in {name}.",
        "A date without a time of day counts for that day; for lead time and tag to"
        " production the release is taken as live by the end of that day.",
        "The period is "
        + (
            "the one set with --since/--until; releases and incidents outside it are left out."
            if options.since or options.until
            else "the whole days from the first to the last release (set one with --since/--until)."
        ),
        f"A hotfix is a patch version (same major.minor, higher patch) within"
        f" {human_duration(options.hotfix_within)} (--hotfix-within) of the release it patches"
        " (one sharing a service, or tagged in the same tag series: v2.14.1 patches v2.14.0"
        " whatever services each listed), or a release whose notes or labels say hotfix; the"
        " deployments it repaired (of the services it ships, else the whole release) count as"
        " change failures, the hotfix itself as rework.",
    ]
    if options.releases is not None:
        groups = trains(releases)
        several = [g for g in groups if len(g) > 1]
        if several:
            notes.append(
                f"{len(several)} of {len(groups)} release rows list several services (trains),"
                f" e.g. {several[0][0].release_id}: {', '.join(r.service for r in several[0])}."
            )
        notes.append(
            "Each spreadsheet row is one release; a service cell listing several services"
            f" (split at {separators}; --service-separator) is a train: one production"
            " deployment per service. Per-service figures (deployment frequency, lead time,"
            " change failure rate, rework, the services table) count each service;"
            " release-level figures (releases per week, who ran releases, approvals, slips,"
            " hotfix share, services per release) count the row once."
        )
    elif history is not None:
        notes.append(
            f"No spreadsheet: each tag matching {options.tag_pattern!r} is taken as a production"
            " release at the moment it was tagged."
        )
    if history is not None:
        first = (
            f"from {history.since.date()}"
            if history.since
            else f"within {history.lookback.days} days (--lookback) before it"
        )
        notes.append(
            "Commit time is the committer date. Tags are grouped into series by the text"
            " before their version (payments-v1.2.0 -> payments, v1.2.0 -> the repository);"
            " each tag brings the commits since the previous tag of its series, the first one"
            f" the commits made {first}. A commit counts once per service whose paths it"
            f" touched ({paths.describe()}; --service-path NAME=GLOB), at the first deployment"
            " of that service containing it; one touching no service's path counts once for"
            " the repository."
        )
        if history.pre_releases:
            shown = ", ".join(history.pre_releases[:5])
            more = ", ..." if len(history.pre_releases) > 5 else ""
            notes.append(
                f"{len(history.pre_releases)} pre-release tag(s) ({shown}{more}) were not taken"
                " as releases: release candidates, alphas and betas do not reach production."
            )
        if not history.releases:
            notes.append(
                f"No tag in {history.repo} matches {options.tag_pattern!r}, so lead time"
                f" cannot be measured; {some_tags(history.repo)}."
            )
        if options.releases is not None:
            unmatched = sum(1 for r in releases if r.tagged is None)
            notes.append(
                f"{len(releases) - unmatched} of {len(releases)} deployments matched a tag by"
                " service and version; the others count for everything but lead time and"
                " tag to production."
            )
    if options.incidents is not None:
        window = human_duration(options.incident_window.total_seconds())
        notes.append(
            "An incident naming a version is linked to that release of its service; one naming"
            " none is linked to the latest production deployment of its service that finished"
            f" before it opened, within {window} (--incident-window), and one naming no"
            " service to the latest release in that window. Linked deployments are change"
            " failures; every link is listed."
        )
    notes.append(
        "DORA bands are the published ranges read as limits, made monotone; see docs/metrics.md."
    )
    return notes


def some_tags(repo: Path) -> str:
    """The newest tags of ``repo``, to help choose ``--tag-pattern``."""
    names = [tag.name for tag in tags(repo)]
    if not names:
        return "the repository has no tags at all"
    shown = ", ".join(names[-10:])
    return f"the newest tags there are: {shown}; choose them with --tag-pattern"
