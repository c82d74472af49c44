"""Freeze calendars: the VEVENTs of an iCalendar (RFC 5545) file as freeze periods.

All-day events, events with a TZID, in UTC or floating, and repeating events
(RRULE, RDATE, EXDATE, moved or cancelled occurrences) are supported; anything
that cannot be read exactly is refused with the file and the event named.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dateutil.rrule import rrule, rruleset, rrulestr

from interlock.domain.wallclock import Freeze, local_instant, to_instant
from interlock.errors import InvalidInput

if TYPE_CHECKING:  # icalendar loads when a calendar is read, not with every server
    from icalendar import Event, vRecur

Interval = tuple[datetime, datetime]

_SUPPORTED_FREQ = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")


@dataclass(frozen=True)
class _Event:
    """One VEVENT: its first start and length, and its recurrence set if it repeats.

    ``start`` is a date (all-day), a naive datetime (floating: local to the
    policy's zone) or an aware one. ``days`` is the calendar-day part of the
    length (all-day events, ``DURATION:P1D``), ``exact`` the elapsed-time part.
    """

    reason: str
    start: date | datetime
    days: int
    exact: timedelta
    recurrence: rruleset | None = field(default=None, compare=False)

    def spans(self, lo: datetime, hi: datetime, zone: tzinfo) -> Iterator[Interval]:
        starts: Iterable[date | datetime] = [self.start]
        if self.recurrence is not None:
            pad = timedelta(days=self.days + 2) + self.exact
            if _aware(self.start):
                starts = self.recurrence.between(lo - pad, hi + pad, inc=True)
            else:
                local_lo = lo.astimezone(zone).replace(tzinfo=None)
                local_hi = hi.astimezone(zone).replace(tzinfo=None)
                starts = self.recurrence.between(local_lo - pad, local_hi + pad, inc=True)
        for first in starts:
            begin, end = self._bounds(first, zone)
            if begin < hi and end > lo:
                yield begin, end

    def _bounds(self, first: date | datetime, zone: tzinfo) -> Interval:
        if not isinstance(self.start, datetime):  # all-day: whole local days
            day = first.date() if isinstance(first, datetime) else first
            return to_instant(day, zone), to_instant(day + timedelta(days=self.days), zone)
        assert isinstance(first, datetime)
        later = first + timedelta(days=self.days)  # calendar days keep the wall-clock time
        if first.tzinfo is None:
            return local_instant(first, zone), local_instant(later + self.exact, zone)
        return first.astimezone(UTC), later.astimezone(UTC) + self.exact


class FreezeCalendar:
    """The freezes of an iCalendar file; repeating events are expanded when asked."""

    def __init__(self, path: Path, zone: tzinfo, events: list[_Event]) -> None:
        self.path = path
        self.zone = zone
        self.events = events

    def between(self, lo: datetime, hi: datetime) -> list[Freeze]:
        """The freezes of this calendar that overlap ``[lo, hi)``."""
        return [
            Freeze(begin, end, event.reason, source=self.path.name)
            for event in self.events
            for begin, end in event.spans(lo, hi, self.zone)
        ]


def load_freeze_calendar(path: Path | str, zone: tzinfo) -> FreezeCalendar:
    """Read an .ics file whose events (VEVENT) are freeze periods.

    All-day events (DATE values) and floating times are read in ``zone``;
    times with a TZID or in UTC stand for themselves. Repeating events (RRULE
    with FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, RDATE, EXDATE and changed or
    cancelled occurrences by RECURRENCE-ID) are expanded. Cancelled events are
    not freezes. Raises :class:`InvalidInput` naming the file, and the event
    when one is at fault.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(
            f"freeze calendar {path} does not exist: fix freeze_calendar in the window gate "
            "(a relative path is read from the directory of interlock.yaml)"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read freeze calendar {path}: {exc.strerror or exc}") from None
    from icalendar import Calendar

    try:
        parsed: Any = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # the parser raises several kinds on bad input
        raise InvalidInput(
            f"freeze calendar {path} is not a valid iCalendar file ({exc}); "
            "export the calendar as .ics (RFC 5545)"
        ) from None
    calendars = [c for c in parsed if c.name == "VCALENDAR"]
    if not calendars:
        raise InvalidInput(
            f"freeze calendar {path} has no VCALENDAR: export the calendar as .ics (RFC 5545)"
        )
    components: list[Event] = [e for cal in calendars for e in cal.walk("VEVENT")]
    try:
        events = _events(components, zone)
    except ValueError as exc:
        raise InvalidInput(f"freeze calendar {path}: {exc}") from None
    return FreezeCalendar(path, zone, events)


def _label(event: Event, index: int) -> str:
    summary = str(event.get("SUMMARY", "")).strip()
    uid = str(event.get("UID", "")).strip()
    name = f'event "{summary}"' if summary else f"event #{index + 1}"
    return f"{name} (UID {uid})" if uid else name


def _aware(value: date | datetime) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None


def _events(components: list[Event], zone: tzinfo) -> list[_Event]:
    changed: dict[str, list[Event]] = {}  # RECURRENCE-ID overrides, by UID
    masters: list[tuple[int, Event]] = []
    for i, event in enumerate(components):
        if event.errors:
            name, problem = event.errors[0]
            raise ValueError(f"{_label(event, i)}: {name} is not valid ({problem})")
        if event.get("RECURRENCE-ID") is not None:
            changed.setdefault(str(event.get("UID", "")), []).append(event)
        else:
            masters.append((i, event))
    out: list[_Event] = []
    for i, event in masters:
        overrides = changed.get(str(event.get("UID", "")), [])
        if not _cancelled(event):
            out.append(_event(event, _label(event, i), zone, overrides))
    # A changed occurrence is an event of its own; its series skips the original date.
    for overrides in changed.values():
        out.extend(_event(e, _label(e, 0), zone, []) for e in overrides if not _cancelled(e))
    return out


def _cancelled(event: Event) -> bool:
    return str(event.get("STATUS", "")).upper() == "CANCELLED"


def _moment(event: Event, name: str, label: str) -> date | datetime | None:
    prop = event.get(name)
    if prop is None:
        return None
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):
        raise ValueError(f"{label}: {name} must be a date or a date and time, got {value!r}")
    zone = prop.params.get("TZID")
    if zone and isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(
            f"{label}: {name} names the time zone {zone!r}, which neither the file (VTIMEZONE) "
            "nor the IANA database defines"
        )
    return value


def _event(event: Event, label: str, zone: tzinfo, overrides: list[Event]) -> _Event:
    start = _moment(event, "DTSTART", label)
    if start is None:
        raise ValueError(f"{label} has no DTSTART: a freeze needs a start")
    days, exact = _length(event, start, label)
    reason = str(event.get("SUMMARY", "")).strip() or label
    recurrence = _recurrence(event, start, zone, label, overrides)
    return _Event(reason, start, days, exact, recurrence)


def _length(event: Event, start: date | datetime, label: str) -> tuple[int, timedelta]:
    end = _moment(event, "DTEND", label)
    duration = event.get("DURATION")
    if end is not None:
        if isinstance(end, datetime) != isinstance(start, datetime) or _aware(end) != _aware(start):
            raise ValueError(f"{label}: DTSTART and DTEND must be the same kind of value")
        if isinstance(start, datetime):
            assert isinstance(end, datetime)
            days, exact = 0, end - start
        else:
            days, exact = (end - start).days, timedelta()
    elif duration is not None and isinstance(getattr(duration, "dt", None), timedelta):
        length: timedelta = duration.dt
        days, exact = length.days, length - timedelta(days=length.days)
        if not isinstance(start, datetime) and exact:
            raise ValueError(f"{label}: an all-day event needs a DURATION in whole days")
    elif isinstance(start, datetime):
        raise ValueError(
            f"{label} has a start time but no DTEND or DURATION: a freeze needs an end"
        )
    else:
        days, exact = 1, timedelta()  # an all-day event without an end lasts that day
    if days < 0 or timedelta(days=days) + exact <= timedelta():
        raise ValueError(f"{label} ends before it starts")
    return days, exact


def _recurrence(
    event: Event,
    start: date | datetime,
    zone: tzinfo,
    label: str,
    overrides: list[Event],
) -> rruleset | None:
    rules: list[vRecur] = event.rrules
    rdates = event.rdates
    if not rules and not rdates and not overrides:
        return None
    first = start if isinstance(start, datetime) else datetime.combine(start, time())
    recurrence = rruleset()
    recurrence.rdate(first)  # DTSTART always counts as the first occurrence
    for rule in rules:
        recurrence.rrule(_rule(rule, first, zone, label))
    for value, period_end in rdates:
        if period_end is not None:
            raise ValueError(f"{label}: RDATE periods are not supported; use DTSTART and RRULE")
        recurrence.rdate(_aligned(value, first, zone))
    for value in event.exdates:
        recurrence.exdate(_aligned(value, first, zone))
    for changed in overrides:
        rid = changed.get("RECURRENCE-ID")
        if str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            raise ValueError(f"{label}: RECURRENCE-ID with RANGE=THISANDFUTURE is not supported")
        recurrence.exdate(_aligned(rid.dt, first, zone))  # the changed copy is its own event
    return recurrence


def _rule(rule: vRecur, first: datetime, zone: tzinfo, label: str) -> rrule:
    from icalendar import vRecur

    freq = [str(f).upper() for f in rule.get("FREQ", [])]
    if not freq or freq[0] not in _SUPPORTED_FREQ:
        raise ValueError(
            f"{label}: RRULE FREQ={','.join(freq) or '(none)'} is not supported for freezes; "
            f"use {', '.join(_SUPPORTED_FREQ)}"
        )
    until = rule.get("UNTIL")
    if until and rule.get("COUNT"):
        raise ValueError(f"{label}: RRULE has both COUNT and UNTIL; RFC 5545 allows only one")
    if any(int(n) < 1 for n in rule.get("INTERVAL", [])):
        raise ValueError(f"{label}: RRULE INTERVAL must be 1 or more")
    without_until = vRecur({k: v for k, v in rule.items() if k != "UNTIL"})
    text = without_until.to_ical().decode()  # type: ignore[no-untyped-call]
    try:
        parsed: rrule = rrulestr(text, dtstart=first)
        if until:
            last = until[0]
            limit = _aligned(last, first, zone)
            if not isinstance(last, datetime):  # a date UNTIL includes that whole day
                limit = limit.replace(hour=23, minute=59, second=59)
            parsed = parsed.replace(until=limit)
        # dateutil looks for the next match up to the year 9999 before it checks UNTIL or
        # COUNT, so a rule that never matches would stall every expansion; refuse it once.
        if parsed.replace(count=None, until=None).after(first, inc=True) is None:
            raise ValueError("it never occurs, e.g. BYMONTHDAY=31 with BYMONTH=2")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{label}: RRULE {text} is not valid ({exc})") from None
    return parsed


def _aligned(value: date | datetime, first: datetime, zone: tzinfo) -> datetime:
    """``value`` as the same kind of datetime as ``first`` (naive or in its zone)."""
    if first.tzinfo is None:
        if isinstance(value, datetime):
            return value.astimezone(zone).replace(tzinfo=None) if _aware(value) else value
        return datetime.combine(value, first.time())
    if isinstance(value, datetime):
        return value if _aware(value) else value.replace(tzinfo=first.tzinfo)
    return datetime.combine(value, first.time(), tzinfo=first.tzinfo)
