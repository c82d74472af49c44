"""The ``window`` gate's block of interlock.yaml: weekly deploy windows, freezes, a calendar.

Example::

    window:
      timezone: Europe/Berlin
      allow:                          # empty or missing: deploys allowed at any time
        - days: [mon, tue, wed, thu]
          from: "09:00"
          to: "16:00"
        - days: [fri]                 # crosses midnight: Friday 22:00 to Saturday 02:00
          from: "22:00"
          to: "02:00"
      freeze:
        - from: 2026-12-20            # a date: the whole day, from its first minute
          to: 2027-01-03              # a date: the whole day, up to its last minute
          reason: year-end freeze
      freeze_calendar: ./freezes.ics  # every VEVENT is a freeze; relative to interlock.yaml

Wall-clock times are turned into instants by
:func:`interlock.domain.wallclock.local_instant`; its rule for
the hours that daylight-saving changes skip or repeat is documented there and
in ``docs/gates-windows-and-metrics.md``.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from interlock.domain.wallclock import Freeze, to_instant
from interlock.spec.common import Strict

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAY_NAMES = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
MINUTES_PER_DAY = 24 * 60


def _day_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"{value!r} is not a day: use mon, tue, wed, thu, fri, sat or sun "
            "(YAML reads unquoted on/off/yes/no as booleans)"
        )
    name = value.strip().lower()
    name = _FULL_DAY_NAMES.get(name, name)
    if name not in WEEKDAYS:
        raise ValueError(f"{value!r} is not a day: use mon, tue, wed, thu, fri, sat or sun")
    return name


def _clock(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f'{value!r} is not a time of day: write it as "HH:MM", e.g. "09:00"')
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960.
        hint = (
            f'"{value // 60:02d}:{value % 60:02d}"' if 0 <= value <= MINUTES_PER_DAY else '"HH:MM"'
        )
        raise ValueError(
            f"got the number {value}: YAML reads an unquoted time such as 16:00 as a number; "
            f"put the time in quotes, e.g. {hint}"
        )
    match = _CLOCK.match(value.strip())
    if not match or (int(match.group(1)) == 24 and match.group(2) != "00"):
        raise ValueError(
            f'{value!r} is not a time of day: write it as "HH:MM" from "00:00" to "23:59" '
            '("24:00" is allowed as the end of a window)'
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _moment(value: Any) -> date | datetime:
    """A date or a datetime; text is read as ISO 8601 (``2026-12-20`` or ``2026-12-20T18:00``)."""
    if isinstance(value, date):  # datetime is a date too
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(
        f"{value!r} is not a date or a date and time: write 2026-12-20 or 2026-12-20T18:00"
    )


Weekday = Annotated[
    str,
    BeforeValidator(_day_name),
    WithJsonSchema({"enum": list(WEEKDAYS), "description": "A day of the week."}),
]
ClockTime = Annotated[
    str,
    BeforeValidator(_clock),
    WithJsonSchema(
        {"type": "string", "pattern": _CLOCK.pattern, "description": 'A local time, "HH:MM".'}
    ),
]
Moment = Annotated[
    datetime | date,
    BeforeValidator(_moment),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A date (2026-12-20) or a local date and time (2026-12-20T18:00).",
        }
    ),
]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class WeeklyWindow(Strict):
    """Deploys are allowed on ``days`` from ``from`` to ``to``, local time.

    ``to`` earlier than ``from`` crosses midnight: the window opens on each of
    ``days`` and closes the next day. ``from`` is included, ``to`` is not.
    """

    days: list[Weekday] = Field(min_length=1, description="The days on which the window opens.")
    start: ClockTime = Field(alias="from", description='When the window opens, "HH:MM".')
    end: ClockTime = Field(
        alias="to", description='When it closes, "HH:MM"; earlier than from: the next day.'
    )

    @model_validator(mode="after")
    def _not_empty(self) -> WeeklyWindow:
        if self.start == "24:00":
            raise ValueError('a window cannot start at "24:00": use "00:00"')
        if self.start_minute == self.end_minute:
            raise ValueError(
                f'from and to are both "{self.start}": for the whole day write '
                'from: "00:00" and to: "24:00"'
            )
        return self

    @property
    def start_minute(self) -> int:
        """Minutes after midnight at which the window opens."""
        return _minutes(self.start)

    @property
    def end_minute(self) -> int:
        """Minutes after midnight at which it closes (1440 for ``24:00``)."""
        return _minutes(self.end)

    @property
    def crosses_midnight(self) -> bool:
        """True when the window closes on the day after it opens."""
        return self.end_minute <= self.start_minute

    @property
    def weekdays(self) -> frozenset[int]:
        """The opening days as ``date.weekday()`` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.days)

    def describe(self) -> str:
        """``mon, tue 09:00-16:00``."""
        return f"{', '.join(self.days)} {self.start}-{self.end}"


class FreezeSpec(Strict):
    """A closed period. A date ``to`` includes that whole day; a date and time ``to`` does not."""

    start: Moment = Field(alias="from")
    end: Moment = Field(alias="to")
    reason: str | None = Field(default=None, description="Shown to whoever waits on the freeze.")

    @model_validator(mode="after")
    def _ordered(self) -> FreezeSpec:
        start, end = _naive_start(self.start), _naive_end(self.end)
        if start is not None and end is not None and end <= start:
            raise ValueError(
                f"the freeze ends ({self.end}) before it starts ({self.start}): swap from and to"
            )
        return self


def _naive_start(value: date | datetime) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    return datetime.combine(value, time())


def _naive_end(value: date | datetime) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is None else None
    return datetime.combine(value + timedelta(days=1), time())


class WindowSpec(Strict):
    """The ``window`` gate: when deploys may happen in an environment."""

    timezone: str = Field(description="An IANA time zone, e.g. Europe/Berlin or UTC.")
    allow: list[WeeklyWindow] = Field(
        default_factory=list,
        description="Weekly windows; deploys are allowed in any of them. Empty: at any time.",
    )
    freeze: list[FreezeSpec] = Field(
        default_factory=list, description="Closed periods; they override the windows."
    )
    freeze_calendar: str | None = Field(
        default=None,
        description="An iCalendar (.ics) file whose events are freezes; relative to the config.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The time zone that local times and dates of this block are read in."""
        return zone_of(self.timezone)

    def freezes(self) -> list[Freeze]:
        """The ``freeze`` entries as instants (the calendar is loaded separately)."""
        zone = self.zone
        out = []
        for i, spec in enumerate(self.freeze):
            start = to_instant(spec.start, zone)
            end = to_instant(spec.end, zone, end_of_day=True)
            if end <= start:
                raise ValueError(f"freeze[{i}] ends ({spec.end}) before it starts ({spec.start})")
            out.append(Freeze(start, end, spec.reason or "freeze", source="interlock.yaml"))
        return out

    @model_validator(mode="after")
    def _freezes_ordered(self) -> WindowSpec:
        self.freezes()  # catches a mix of dates and times with offsets that is out of order
        return self


def zone_of(name: str) -> ZoneInfo:
    """The time zone called ``name``; ``ValueError`` with a suggestion when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ValueError(
            f"unknown time zone {name!r}: {hint}use an IANA name such as Europe/Berlin or UTC"
        ) from None
