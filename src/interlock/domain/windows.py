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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from interlock.domain.freeze_calendar import FreezeCalendar, load_freeze_calendar
from interlock.domain.wallclock import Freeze, local_instant
from interlock.errors import InvalidInput

HORIZON = timedelta(days=400)
# Most answers lie within a week; look further only when needed.
_SPANS = (timedelta(days=8), timedelta(days=64), HORIZON)

Interval = tuple[datetime, datetime]

__all__ = [
    "HORIZON",
    "FreezeCalendar",
    "WeeklyWindow",
    "WindowDecision",
    "WindowPolicy",
    "decide",
    "load_freeze_calendar",
    "next_open",
    "WindowBlock",
]


class WeeklyWindow(Protocol):
    """A weekly deploy window (``spec.windows.WeeklyWindow`` is one): local opening times."""

    @property
    def start_minute(self) -> int: ...
    @property
    def end_minute(self) -> int: ...
    @property
    def crosses_midnight(self) -> bool: ...
    @property
    def weekdays(self) -> frozenset[int]: ...
    def describe(self) -> str: ...


class WindowBlock(Protocol):
    """A ``window`` gate's block of the config (``spec.windows.WindowSpec`` is one)."""

    @property
    def zone(self) -> ZoneInfo: ...
    @property
    def allow(self) -> Sequence[WeeklyWindow]: ...
    @property
    def freeze_calendar(self) -> str | None: ...
    def freezes(self) -> list[Freeze]: ...


@dataclass(frozen=True)
class WindowPolicy:
    """Everything the decision needs: the zone, the weekly windows and the freezes."""

    zone: ZoneInfo
    windows: tuple[WeeklyWindow, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    calendar: FreezeCalendar | None = None

    @classmethod
    def from_spec(cls, spec: WindowBlock, base_dir: Path | str | None = None) -> WindowPolicy:
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
