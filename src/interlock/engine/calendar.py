"""The release calendar: scheduled releases and freeze periods over a horizon.

Scheduled releases are releases in state ``scheduled``; freezes come from the
``window`` gates of every environment (their ``freeze:`` list and their
``freeze_calendar`` file). The same calendar is listed by ``interlock calendar``
and served as an iCalendar (RFC 5545) feed that calendar applications subscribe to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from interlock import __version__
from interlock.domain.records import Item, Release
from interlock.domain.states import ReleaseState
from interlock.domain.wallclock import Freeze
from interlock.domain.windows import HORIZON, WindowPolicy
from interlock.engine.core import Engine
from interlock.errors import InterlockError, InvalidInput
from interlock.spec.model import Config

if TYPE_CHECKING:  # icalendar loads when a feed is served, not with every server
    from icalendar import Event

DEFAULT_DAYS = 90
MAX_DAYS = HORIZON.days
RELEASE_LENGTH = timedelta(minutes=30)
"""How long a scheduled release lasts in calendar applications: only its start is known."""
REFRESH = timedelta(minutes=15)
"""How often subscribers are asked to fetch the feed again."""
_PAGE = 200


@dataclass(frozen=True)
class ScheduledRelease:
    """A release waiting for its time."""

    id: int
    scheduled_at: datetime
    items: tuple[Item, ...]
    reason: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    route: tuple[str, ...]

    @property
    def uid(self) -> str:
        """The iCalendar UID: the same release is always the same event."""
        return f"release-{self.id}@interlock"


@dataclass(frozen=True)
class FreezePeriod:
    """A freeze, and every environment it closes."""

    start: datetime
    end: datetime
    reason: str
    source: str  # "interlock.yaml" or the freeze calendar's file name
    environments: tuple[str, ...]

    @property
    def uid(self) -> str:
        """The iCalendar UID: stable while the freeze itself does not change."""
        key = f"{self.start.isoformat()}|{self.end.isoformat()}|{self.reason}|{self.source}"
        return f"freeze-{hashlib.sha256(key.encode()).hexdigest()[:24]}@interlock"


@dataclass(frozen=True)
class ReleaseCalendar:
    start: datetime
    end: datetime
    releases: tuple[ScheduledRelease, ...]
    freezes: tuple[FreezePeriod, ...]
    problems: tuple[str, ...] = ()  # freeze calendars that could not be read


def release_calendar(
    engine: Engine, *, days: int = DEFAULT_DAYS, readable: set[str] | None = None
) -> ReleaseCalendar:
    """Scheduled releases starting before now + ``days`` and the freezes overlapping it.

    Only releases touching a service in ``readable`` are listed (``None``: all).
    A release whose time has passed but that has not started yet is listed too.
    """
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be from 1 to {MAX_DAYS}, not {days}", field="days")
    start = engine.clock.now()
    end = start + timedelta(days=days)
    active = engine.configs.active()
    releases = [r for r in _scheduled(engine, readable) if r.scheduled_at < end]
    releases.sort(key=lambda r: (r.scheduled_at, r.id))
    freezes, problems = _freezes(active.config, active.base_dir, start, end)
    return ReleaseCalendar(start, end, tuple(releases), tuple(freezes), tuple(problems))


def _scheduled(engine: Engine, readable: set[str] | None) -> Iterable[ScheduledRelease]:
    cursor: int | None = None
    while True:
        with engine.db.read() as tx:
            page: list[Release] = tx.list_releases(
                states=[ReleaseState.SCHEDULED.value],
                before_id=cursor,
                limit=_PAGE,
                services_in=sorted(readable) if readable is not None else None,
            )
        for release in page:
            if release.scheduled_at is None:
                continue
            yield ScheduledRelease(
                id=release.id,
                scheduled_at=release.scheduled_at,
                items=release.items,
                reason=release.reason,
                created_by=release.created_by,
                created_at=release.created_at,
                updated_at=release.updated_at,
                route=release.route,
            )
        if len(page) < _PAGE:
            return
        cursor = page[-1].id


def _freezes(
    config: Config, base_dir: Path, start: datetime, end: datetime
) -> tuple[list[FreezePeriod], list[str]]:
    """Every environment's freezes in ``[start, end)``; the same freeze once, with its envs."""
    found: dict[tuple[datetime, datetime, str, str], list[str]] = {}
    problems: list[str] = []
    for env in config.environments:
        for gate in [*env.gates.before, *env.gates.after]:
            if gate.window is None:
                continue
            freezes: list[Freeze]
            try:
                policy = WindowPolicy.from_spec(gate.window, base_dir)
                freezes = policy.freezes_between(start, end)
            except InterlockError as exc:  # a missing or broken freeze calendar
                problems.append(f"{env.name}: {exc.detail}")
                freezes = [f for f in gate.window.freezes() if f.start < end and f.end > start]
            for freeze in freezes:
                envs = found.setdefault(
                    (freeze.start, freeze.end, freeze.reason, freeze.source), []
                )
                if env.name not in envs:
                    envs.append(env.name)
    periods = [
        FreezePeriod(s, e, reason, source, tuple(envs))
        for (s, e, reason, source), envs in found.items()
    ]
    periods.sort(key=lambda f: (f.start, f.end, f.reason))
    return periods, problems


def freezes_between(engine: Engine, start: datetime, end: datetime) -> list[FreezePeriod]:
    """Every freeze of the active config overlapping ``[start, end)`` (a calendar that
    cannot be read counts with the freezes written in the config)."""
    active = engine.configs.active()
    return _freezes(active.config, active.base_dir, start, end)[0]


def to_ical(calendar: ReleaseCalendar, *, now: datetime) -> bytes:
    """The calendar as an iCalendar feed: one VEVENT per scheduled release and per freeze."""
    from icalendar import Calendar, vDuration

    feed = Calendar()
    feed.add("prodid", f"-//Interlock//Release calendar {__version__}//EN")
    feed.add("version", "2.0")
    feed.add("calscale", "GREGORIAN")
    feed.add("method", "PUBLISH")
    feed.add("x-wr-calname", "Interlock releases and freezes")
    feed.add("x-wr-caldesc", "Scheduled releases and deploy freezes, from Interlock")
    feed.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    feed.add("x-published-ttl", vDuration(REFRESH))  # an X- property: say it is a duration
    for release in calendar.releases:
        feed.add_component(_release_event(release, now))
    for freeze in calendar.freezes:
        feed.add_component(_freeze_event(freeze, now))
    data: bytes = feed.to_ical()
    return data


def _release_event(release: ScheduledRelease, now: datetime) -> Event:
    from icalendar import Event

    items = ", ".join(f"{i.service}@{i.version}" for i in release.items)
    event = Event()
    event.add("uid", release.uid)
    event.add("dtstamp", now)
    event.add("created", release.created_at)
    event.add("last-modified", release.updated_at)
    event.add("dtstart", release.scheduled_at)
    event.add("dtend", release.scheduled_at + RELEASE_LENGTH)
    event.add("summary", f"Release {release.id}: {items}")
    event.add(
        "description",
        "\n".join(
            [
                release.reason,
                "",
                f"Services: {items}",
                f"Route: {' → '.join(release.route)}",
                f"Created by {release.created_by}",
                f"Scheduled release {release.id}: `interlock release show {release.id}`",
            ]
        ),
    )
    if release.route:
        event.add("categories", list(release.route))
        event.add("location", ", ".join(release.route))
    event.add("status", "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    return event


def _freeze_event(freeze: FreezePeriod, now: datetime) -> Event:
    from icalendar import Event

    envs = ", ".join(freeze.environments)
    event = Event()
    event.add("uid", freeze.uid)
    event.add("dtstamp", now)
    event.add("dtstart", freeze.start)
    event.add("dtend", freeze.end)
    event.add("summary", f"Freeze ({envs}): {freeze.reason}")
    event.add(
        "description",
        f"No deploys to {envs} while it lasts (a break-glass override is audited).\n"
        f"Reason: {freeze.reason}\nFrom: {freeze.source}",
    )
    event.add("categories", list(freeze.environments))
    event.add("location", envs)
    event.add("status", "CONFIRMED")
    event.add("transp", "TRANSPARENT")
    return event
