"""What is being released: release notes, environment diffs and the release calendar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from interlock.api.deps import AppDep, Id, PrincipalDep, principal
from interlock.api.text import Line
from interlock.engine import views
from interlock.engine.calendar import DEFAULT_DAYS, MAX_DAYS, ReleaseCalendar, release_calendar
from interlock.engine.calendar import to_ical as calendar_ical
from interlock.engine.identity import Principal
from interlock.engine.notes import (
    FIRST_LIMIT,
    CommitRange,
    Version,
    environment_diff,
    release_notes,
    short,
)
from interlock.vcs import Commit

router = APIRouter(tags=["insight"])

ICAL = "text/calendar; charset=utf-8"
DaysQuery = Annotated[
    int, Query(ge=1, le=MAX_DAYS, description="How many days ahead (default 90).")
]


@router.get("/releases/{release_id}/notes")
def notes(
    release_id: Id,
    app: AppDep,
    who: PrincipalDep,
    environment: Annotated[
        Line | None,
        Query(description="Compare with what runs here; default: the route's last environment."),
    ] = None,
) -> dict[str, Any]:
    """Commits and tickets per service between what ran in the environment and the release."""
    app.readable_or_404(
        who, views.release_services(app.engine, release_id), f"release {release_id}"
    )
    found = release_notes(app.engine, release_id, environment)
    return {
        "release": found.release_id,
        "kind": found.kind,
        "reason": found.reason,
        "created_by": found.created_by,
        "environment": found.environment,
        "route": list(found.route),
        "services": [
            {
                "service": s.service,
                "repo": s.repo,
                "old": _version(s.old),
                "new": _version(s.new),
                "first": s.first,
                "limit": FIRST_LIMIT if s.first else None,
                "added": _range(s.added),
                "removed": _range(s.removed),
                "problem": s.problem,
            }
            for s in found.services
        ],
        "tickets": [t.__dict__ for t in found.tickets],
    }


@router.get("/diff/{env_a}/{env_b}")
def diff(env_a: Line, env_b: Line, app: AppDep, who: PrincipalDep) -> dict[str, Any]:
    """Which services differ between two environments, and the commits each has alone."""
    found = environment_diff(app.engine, env_a, env_b, app.access.readable_services(who))
    return {
        "a": found.a,
        "b": found.b,
        "services": [
            {
                "service": s.service,
                "repo": s.repo,
                "a": _version(s.a),
                "b": _version(s.b),
                "same": s.same,
                "ahead": found.ahead(s),
                "diverged": s.diverged,
                "only_in_a": _range(s.only_in_a),
                "only_in_b": _range(s.only_in_b),
                "problem": s.problem,
            }
            for s in found.services
        ],
    }


@router.get("/calendar")
def calendar(app: AppDep, who: PrincipalDep, days: DaysQuery = DEFAULT_DAYS) -> dict[str, Any]:
    """Scheduled releases (that you may read), deploy windows and freezes over ``days``."""
    out = _calendar_json(
        release_calendar(app.engine, days=days, readable=app.access.readable_services(who))
    )
    out["windows"] = _windows(app.configs.active().config)
    return out


def _windows(config: Any) -> list[dict[str, Any]]:
    """Each environment's weekly deploy windows (local times in the window's zone)."""
    found = []
    for env in config.environments:
        for gate in [*env.gates.before, *env.gates.after]:
            if gate.window is None:
                continue
            found.append(
                {
                    "environment": env.name,
                    "timezone": gate.window.timezone,
                    "allow": [
                        {"days": list(w.days), "from": w.start, "to": w.end}
                        for w in gate.window.allow
                    ],
                }
            )
    return found


def calendar_principal(
    request: Request,
    token: Annotated[
        Line | None,
        Query(
            description="The API token, for calendar applications that cannot send headers. "
            "It ends up in URLs (and logs): use a token of a read-only user."
        ),
    ] = None,
) -> Principal:
    """The bearer token from the header, or else from ``?token=`` (this route only)."""
    if token is None or request.headers.get("authorization"):
        return principal(request)
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", f"Bearer {token.strip()}".encode("latin-1", "replace")))
    return principal(Request({**request.scope, "headers": headers}))


@router.get(
    "/calendar.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "An iCalendar feed."}},
)
def calendar_feed(
    app: AppDep,
    who: Annotated[Principal, Depends(calendar_principal)],
    days: DaysQuery = DEFAULT_DAYS,
) -> Response:
    """The calendar as an iCalendar feed to subscribe to (`?token=` or a bearer header)."""
    found = release_calendar(app.engine, days=days, readable=app.access.readable_services(who))
    return Response(
        calendar_ical(found, now=app.engine.clock.now()),
        media_type=ICAL,
        headers={
            "content-disposition": 'inline; filename="interlock.ics"',
            "cache-control": "private, max-age=60",
        },
    )


def _calendar_json(found: ReleaseCalendar) -> dict[str, Any]:
    return {
        "from": found.start,
        "until": found.end,
        "releases": [
            {
                "id": r.id,
                "scheduled_at": r.scheduled_at,
                "items": [
                    {"service": i.service, "version": i.version, "digest": i.digest}
                    for i in r.items
                ],
                "reason": r.reason,
                "created_by": r.created_by,
                "route": list(r.route),
                "uid": r.uid,
            }
            for r in found.releases
        ],
        "freezes": [
            {
                "start": f.start,
                "end": f.end,
                "reason": f.reason,
                "source": f.source,
                "environments": list(f.environments),
                "uid": f.uid,
            }
            for f in found.freezes
        ],
        "problems": list(found.problems),
        "feed": "/api/v1/calendar.ics",
    }


def _version(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "commit": version.commit,
        "short": short(version.commit) or None,
        "source": version.source,
    }


def _range(found: CommitRange) -> dict[str, Any]:
    return {
        "commits": [_commit(c) for c in found.commits],
        "total": found.total,
        "truncated": found.truncated,
        "tickets": [t.__dict__ for t in found.tickets],
    }


def _commit(commit: Commit) -> dict[str, Any]:
    return {
        "sha": commit.sha,
        "short": short(commit.sha),
        "subject": commit.subject,
        "body": commit.body,
        "author": commit.author_name,
        "email": commit.author_email,
        "authored_at": commit.authored_at,
        "committed_at": commit.committed_at,
        "merge": commit.is_merge(),
        "tickets": list(commit.tickets),
    }
