"""Wall-clock time in a time zone: local times and dates as instants, freezes as periods.

Pure time-zone math shared by the config (``spec/windows.py``) and the window
gate's decision (:mod:`interlock.domain.windows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Freeze:
    """A closed period as instants: ``start`` included, ``end`` excluded."""

    start: datetime
    end: datetime
    reason: str
    source: str  # "interlock.yaml" or the calendar file's name

    def covers(self, at: datetime) -> bool:
        """True while the freeze is in force at ``at``."""
        return self.start <= at < self.end


def local_instant(wall: datetime, zone: tzinfo) -> datetime:
    """The first instant at which a clock in ``zone`` reads ``wall`` (naive) or later.

    That settles the two daylight-saving cases: a time that is skipped in spring
    (02:30 in Berlin on the last Sunday of March) becomes the moment the clock
    jumps, 03:00 CEST; a time that occurs twice in autumn (02:30 on the last
    Sunday of October) is its first occurrence, 02:30 CEST. The result is in UTC.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: the clock jumps over ``wall``. Find the jump, to the second; the
    # clock reads less than ``wall`` at ``low`` and at least ``wall`` at ``high``.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low = math.floor(min(first, other).timestamp())
    high = math.ceil(max(first, other).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def to_instant(value: date | datetime, zone: tzinfo, end_of_day: bool = False) -> datetime:
    """A config or calendar moment as a UTC instant.

    A date means its first minute (or, with ``end_of_day``, the first minute of
    the next day); a naive time is local to ``zone``; a time with an offset or a
    zone stands for itself.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return local_instant(value, zone)
    day = value + timedelta(days=1) if end_of_day else value
    return local_instant(datetime.combine(day, time()), zone)
