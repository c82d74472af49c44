"""The window gate's decision: may a deploy start at a given instant, and if not, when?

:func:`decide` and :func:`next_open` are pure: they read only the
:class:`WindowPolicy` they are given. Building a policy from the config
(:meth:`WindowPolicy.from_spec`) reads the freeze calendar, if there is one.

Deploys are allowed inside any weekly window (or at any time when there is
none) and outside every freeze. Intervals are half-open: a window ``09:00-16:00``
is open at 09:00:00 and closed at 16:00:00; a freeze ending at 18:00 is over at
18:00:00. Adjacent windows join up (``mon 00:00-24:00`` and ``tue 00:00-24:00``
close on Tuesday night). Searches look ahead at most :data:`HORIZON`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr  # type: ignore[import-untyped]
from icalendar import Calendar, Event, vRecur

from interlock.errors import InvalidInput
from interlock.spec.windows import Freeze, WeeklyWindow, WindowSpec, local_instant, to_instant

HORIZON = timedelta(days=400)
# Most answers lie within a week; look further only when needed.
_SPANS = (timedelta(days=8), timedelta(days=64), HORIZON)

Interval = tuple[datetime, datetime]

__all__ = [
    "HORIZON",
    "FreezeCalendar",
    "WindowDecision",
    "WindowPolicy",
    "decide",
    "load_freeze_calendar",
    "next_open",
]


@dataclass(frozen=True)
class WindowPolicy:
    """Everything the decision needs: the zone, the weekly windows and the freezes."""

    zone: ZoneInfo
    windows: tuple[WeeklyWindow, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    calendar: FreezeCalendar | None = None

    @classmethod
    def from_spec(cls, spec: WindowSpec, base_dir: Path | str | None = None) -> WindowPolicy:
        """The policy of a ``window`` block; ``freeze_calendar`` is read relative to ``base_dir``.

        Raises :class:`InvalidInput` naming the file when the calendar is missing
        or is not valid iCalendar.
        """
        calendar = None
        if spec.freeze_calendar is not None:
            path = Path(spec.freeze_calendar).expanduser()
            if not path.is_absolute():
                path = Path(base_dir or ".") / path
            calendar = load_freeze_calendar(path, spec.zone)
        return cls(
            zone=spec.zone,
            windows=tuple(spec.allow),
            freezes=tuple(spec.freezes()),
            calendar=calendar,
        )

    def freezes_between(self, lo: datetime, hi: datetime) -> list[Freeze]:
        """The freezes (config and calendar) that overlap ``[lo, hi)``."""
        found = [f for f in self.freezes if f.start < hi and f.end > lo]
        if self.calendar is not None:
            found.extend(self.calendar.between(lo, hi))
        return found


@dataclass(frozen=True)
class WindowDecision:
    """Whether a deploy may start at an instant, why, and when that changes.

    ``opens_at`` is when a closed gate next opens (``None`` when it is open, or
    when it does not open within :data:`HORIZON`). ``closes_at`` is when the open
    period containing the instant ends, or, when closed, when the next open
    period ends (``None`` when that is beyond the horizon). ``freeze`` is the
    freeze in force, if any. Times are in the policy's time zone. Beware that
    Python's ``==`` between datetimes of different zones is always False for a
    time in a repeated (fall-back) hour (PEP 495): compare ``astimezone(UTC)``.
    """

    open: bool
    reason: str
    opens_at: datetime | None
    closes_at: datetime | None
    freeze: Freeze | None


def decide(at: datetime, policy: WindowPolicy) -> WindowDecision:
    """Whether the window gate is open at ``at`` (an aware datetime)."""
    at = _utc(at)
    opens: list[Interval] = []
    hi = at
    for span in _SPANS:
        hi = at + span
        opens = _open_intervals(policy, at, hi)
        if opens and opens[0][1] < hi:
            break
    first = opens[0] if opens else None
    is_open = first is not None and first[0] == at
    opens_at = first[0] if first is not None and not is_open else None
    closes_at = first[1] if first is not None and first[1] < hi else None
    freeze = _freeze_at(at, policy)

    zone = policy.zone
    if is_open:
        reason = _open_reason(at, policy)
        if closes_at is not None:
            reason += f"; closes at {_show(closes_at, zone)}"
    else:
        if freeze is not None:
            reason = (
                f"frozen: {freeze.reason} ({freeze.source}, from {_show(freeze.start, zone)} "
                f"until {_show(freeze.end, zone)})"
            )
        else:
            reason = f"outside the deploy windows ({_describe_windows(policy)})"
        if opens_at is not None:
            reason += f"; opens at {_show(opens_at, zone)}"
        else:
            reason += f"; it does not open in the next {HORIZON.days} days"
    return WindowDecision(
        open=is_open,
        reason=reason,
        opens_at=_local(opens_at, zone),
        closes_at=_local(closes_at, zone),
        freeze=freeze,
    )


def next_open(at: datetime, policy: WindowPolicy) -> datetime | None:
    """The first instant at or after ``at`` when deploys are allowed.

    ``at`` itself when the gate is open; ``None`` when it does not open within
    :data:`HORIZON` (for example a freeze with no end in sight).
    """
    decision = decide(at, policy)
    if decision.open:
        return _utc(at).astimezone(policy.zone)
    return decision.opens_at


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(
            f"the window gate needs an aware datetime, got {at.isoformat()} without a time zone"
        )
    return at.astimezone(UTC)


def _local(at: datetime | None, zone: ZoneInfo) -> datetime | None:
    return at.astimezone(zone) if at is not None else None


def _show(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _describe_windows(policy: WindowPolicy) -> str:
    return "; ".join(w.describe() for w in policy.windows) + f", {policy.zone.key}"


def _open_reason(at: datetime, policy: WindowPolicy) -> str:
    if not policy.windows:
        return "no deploy windows are configured and no freeze is in force"
    for window, (start, end) in _occurrences(policy, at, at + timedelta(microseconds=1)):
        if start <= at < end:
            return f"inside the deploy window {window.describe()} ({policy.zone.key})"
    return f"inside the deploy windows ({_describe_windows(policy)})"  # pragma: no cover


def _freeze_at(at: datetime, policy: WindowPolicy) -> Freeze | None:
    """The freeze in force at ``at``; of several, the one that lasts longest."""
    active = [f for f in policy.freezes_between(at, at + timedelta(microseconds=1)) if f.covers(at)]
    return max(active, key=lambda f: f.end) if active else None


def _wall(day: date, minute: int) -> datetime:
    return datetime.combine(day, time()) + timedelta(minutes=minute)


def _occurrences(
    policy: WindowPolicy, lo: datetime, hi: datetime
) -> Iterable[tuple[WeeklyWindow, Interval]]:
    """Every weekly window occurrence overlapping ``[lo, hi)``, as UTC instants."""
    zone = policy.zone
    # A window that crosses midnight opened the day before; two days covers any offset.
    day = lo.astimezone(zone).date() - timedelta(days=2)
    last = hi.astimezone(zone).date()
    while day <= last:
        for window in policy.windows:
            if day.weekday() not in window.weekdays:
                continue
            close_day = day + timedelta(days=1) if window.crosses_midnight else day
            start = local_instant(_wall(day, window.start_minute), zone)
            end = local_instant(_wall(close_day, window.end_minute), zone)
            if start < end and start < hi and end > lo:
                yield window, (start, end)
        day += timedelta(days=1)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(allowed: list[Interval], closed: list[Interval]) -> list[Interval]:
    """``allowed`` minus ``closed``; both merged and sorted."""
    out: list[Interval] = []
    for start, end in allowed:
        cursor = start
        for c_start, c_end in closed:
            if c_end <= cursor or c_start >= end:
                continue
            if c_start > cursor:
                out.append((cursor, c_start))
            cursor = max(cursor, c_end)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor, end))
    return out


def _open_intervals(policy: WindowPolicy, lo: datetime, hi: datetime) -> list[Interval]:
    """The periods within ``[lo, hi)`` when deploys are allowed, sorted and disjoint."""
    if policy.windows:
        allowed = _merge(interval for _, interval in _occurrences(policy, lo, hi))
    else:
        allowed = [(lo, hi)]
    closed = _merge((f.start, f.end) for f in policy.freezes_between(lo, hi))
    clipped = [(max(s, lo), min(e, hi)) for s, e in _subtract(allowed, closed)]
    return [(s, e) for s, e in clipped if s < e]


# --- freeze calendars (iCalendar, RFC 5545) ---------------------------------

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
    freq = [str(f).upper() for f in rule.get("FREQ", [])]
    if not freq or freq[0] not in _SUPPORTED_FREQ:
        raise ValueError(
            f"{label}: RRULE FREQ={','.join(freq) or '(none)'} is not supported for freezes; "
            f"use {', '.join(_SUPPORTED_FREQ)}"
        )
    until = rule.get("UNTIL")
    if until and rule.get("COUNT"):
        raise ValueError(f"{label}: RRULE has both COUNT and UNTIL; RFC 5545 allows only one")
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
