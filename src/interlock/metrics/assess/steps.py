"""What to do first: which service to pilot, which manual work to automate, in what order.

The pilot is the service that releases most often on its own with the fewest
failures: its record fills fastest and moving it needs nobody else's release
call. Manual work is read from the notes column: the chores people wrote down
while releasing, counted by how many releases mention them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, tzinfo

from interlock.metrics.assess.model import ServiceSummary, Sign, Step
from interlock.metrics.assess.releases import Hotfix, Release, heads
from interlock.metrics.events import Outcome

CHORES: tuple[tuple[str, str, str], ...] = (
    # (label, pattern, what to make of it)
    (
        "database migrations",
        r"migrat|schema change|\bddl\b|alembic|flyway|liquibase",
        "a pipeline step",
    ),
    (
        "manual checks after deploying",
        r"smoke|sanity|manual(ly)? test|verif|check(ed)? (the )?(site|page|logs|dashboard)",
        "a check gate",
    ),
    ("service restarts", r"restart|reboot|bounce", "a pipeline step"),
    ("configuration changes", r"config|env(ironment)? var|\bsecret|properties", "a pipeline step"),
    ("feature flag changes", r"feature flag|\bflag\b|toggle", "a pipeline step"),
    ("cache purges", r"\bcache|purge|flush|invalidat", "a pipeline step"),
    (
        "commands run by hand",
        r"\bssh\b|by hand|manual|script|\bscp\b|\bftp\b|copied|copy",
        "a pipeline step",
    ),
    ("backups before releasing", r"backup|back up|snapshot", "a pipeline step"),
    (
        "DNS, certificates and load balancers",
        r"\bdns\b|certificat|\bcert\b|load balancer|\blb\b",
        "a pipeline step",
    ),
    (
        "waiting on someone",
        r"wait|blocked|blocker|sign[- ]?off|approval|on hold",
        "an approval gate",
    ),
)


def chores(releases: list[Release]) -> list[tuple[str, int, str]]:
    """(chore, releases whose notes mention it, what to automate it as), most mentioned first."""
    counts = []
    for label, pattern, form in CHORES:
        rx = re.compile(pattern, re.IGNORECASE)
        count = sum(1 for r in releases if r.notes and rx.search(r.notes))
        if count:
            counts.append((label, count, form))
    counts.sort(key=lambda c: (-c[1], c[0]))
    return counts


def summaries(
    releases: list[Release], hotfixes: list[Hotfix], failed: set[str], zone: tzinfo
) -> list[ServiceSummary]:
    """Per service: releases, failures, hotfixes, how often alone, who it goes out with."""
    live = [r for r in releases if r.outcome is not Outcome.CANCELLED]
    per_day: dict[date, set[str]] = defaultdict(set)
    for release in live:
        per_day[release.when.day(zone)].add(release.service)
    result = []
    for service in sorted({r.service for r in live}):
        mine = [r for r in live if r.service == service]
        days = {r.when.day(zone) for r in mine}
        partners: dict[str, int] = defaultdict(int)
        for day in days:
            for other in per_day[day] - {service}:
                partners[other] += 1
        often = sorted(
            (p for p, c in partners.items() if c * 2 > len(days)), key=lambda p: (-partners[p], p)
        )
        result.append(
            ServiceSummary(
                service=service,
                releases=len(mine),
                first=str(min(days)),
                last=str(max(days)),
                change_failures=sum(1 for r in mine if r.id in failed),
                hotfixes=sum(1 for h in hotfixes if h.fix.service == service),
                released_alone=sum(1 for day in days if per_day[day] == {service}),
                often_with=often,
            )
        )
    return result


def pilot(services: list[ServiceSummary]) -> ServiceSummary | None:
    """The service to try Interlock on first (see the module docstring)."""
    candidates = [s for s in services if s.releases >= 2] or services
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda s: (
            bool(s.often_with),
            -s.releases,
            s.change_failures / s.releases,
            s.service,
        ),
    )


_SIGN_STEPS: dict[str, tuple[str, str]] = {
    "no_approver": (
        "Record every approval as an approval gate",
        "an approval gate in interlock.yaml (for example 1 of release-managers, never the"
        " release's author) records who approved what, and when",
    ),
    "one_person": (
        "Write the release down so that anyone can run it",
        "the deploy steps and the runbook in interlock.yaml replace what one person knows;"
        " give the release role to a second person",
    ),
    "tag_gap": (
        "Let CI register each tag and promote it to staging automatically",
        "a built release then waits only for the production approval, not for the next call",
    ),
    "together": (
        "Release coupled services as one declared train, then separate them",
        "declare depends_on between them so Interlock sequences the train; each one released"
        " apart later removes a coordination meeting",
    ),
    "weekly_slot": (
        "Replace the fixed release slot with a deploy window on every working day",
        "a window gate keeps the safe hours; releases stop waiting for the weekly call",
    ),
    "hotfixes": (
        "Add a verification check after each production deployment, with a rollback runbook",
        "a failing check rolls back at once instead of waiting for a patch release",
    ),
    "slips": (
        "Schedule releases in Interlock (interlock release create --at)",
        "the plan and the actual start are then recorded, and a slip shows whom it waits on",
    ),
    "irregular": (
        "Release smaller changes more often, on any day",
        "a steady flow of small releases is easier to check and to roll back than bursts",
    ),
}


def next_steps(
    signs: list[Sign], services: list[ServiceSummary], releases: list[Release]
) -> list[Step]:
    """The steps to take first, each with the evidence behind it."""
    steps: list[Step] = []
    chosen = pilot(services)
    if chosen is not None:
        alone = f"released on its own on {chosen.released_alone} of its release days"
        why = (
            f"{chosen.service} has the most releases ({chosen.releases}) among services not"
            f" tied to others, {alone}, with {chosen.change_failures} change failure(s)"
        )
        if chosen.often_with:
            why = (
                f"every service goes out with others; {chosen.service} has the most releases"
                f" ({chosen.releases}), usually with {', '.join(chosen.often_with)}"
            )
        steps.append(Step(f"Pilot Interlock on {chosen.service}", why))
    live = heads([r for r in releases if r.outcome is not Outcome.CANCELLED])  # rows once
    for label, count, form in chores(live)[:3]:
        steps.append(
            Step(
                f"Turn {label} into {form}",
                f"the notes of {count} of {len(live)} releases mention {label}",
            )
        )
    for sign in signs:
        if sign.observed and sign.key in _SIGN_STEPS:
            title, how = _SIGN_STEPS[sign.key]
            steps.append(Step(title, f"{how}; evidence: {sign.evidence}"))
    steps.append(
        Step(
            "Run this assessment again in six weeks",
            "compare the figures to see whether the changes moved them",
        )
    )
    return steps
