"""Dates as people write them in release spreadsheets, read without guessing.

Only unambiguous forms are accepted: ISO 8601 (``2024-03-05``,
``2024-03-05 14:30``, ``2024-03-05T14:30:00+01:00``, ``...Z``, ``... UTC``,
``2024-03-05 2:30 PM``), the same with slashes (``2024/03/05``), dates that
name their month (``5 Mar 2024``, ``March 5, 2024 14:30``, ``Tue, 05 Mar 2024
14:30:00 +0000``), and real date cells of a workbook. ``05/03/2024`` is
refused: it is the 5th of March in Europe and the 3rd of May in the USA.

A date or time without a time zone is read in the assumed zone (UTC unless
the user chose another), and the report says so. A date without a time of
day is kept as a day: it counts for that calendar day, and "in production by"
is the end of that day, an upper bound.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

_SLASHED_ISO = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})(.*)$")
_AMBIGUOUS = re.compile(r"^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\b")
_MONTH = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b", re.IGNORECASE
)


@dataclass(frozen=True)
class When:
    """A moment read from a cell; ``at`` is aware (midnight in the zone when there was no time)."""

    at: datetime
    has_time: bool
    zone_given: bool  # the cell named its time zone (an offset or Z)

    def day(self, zone: tzinfo) -> date:
        """The calendar day in ``zone`` (a date-only cell keeps its own day)."""
        return self.at.astimezone(zone).date()

    def in_production_by(self) -> datetime:
        """When the release was surely live: the moment itself, or the end of its day."""
        return self.at if self.has_time else self.at + timedelta(days=1)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def parse_when(value: object, zone: tzinfo) -> When | None:
    """The moment in a cell; None for an empty cell.

    Raises ``ValueError`` with a message for the user when the cell holds
    something that is not an unambiguous date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return _from_datetime(value, zone, has_time=_has_time(value))
    if isinstance(value, date):
        return _from_datetime(datetime.combine(value, time(0)), zone, has_time=False)
    if isinstance(value, int | float):
        raise ValueError(f"{value!r} is a number, not a date; write dates as YYYY-MM-DD")
    text = _text(value)
    slashed = _SLASHED_ISO.match(text)
    if slashed:
        year, month, day, rest = slashed.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
    if _AMBIGUOUS.match(text):
        raise ValueError(
            f"{text!r} is ambiguous (day/month or month/day?); write dates as YYYY-MM-DD"
        )
    candidate = text.replace(" UTC", "Z").replace(" ", "T", 1) if len(text) > 10 else text
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return _spelled(text, zone)
    return _from_datetime(parsed, zone, has_time=len(text) > 10)


def _spelled(text: str, zone: tzinfo) -> When:
    """A date naming its month (``5 Mar 2024``), or ISO with more words (``2:30 PM``)."""
    problem = ValueError(
        f"{text!r} is not a date; write it as YYYY-MM-DD or YYYY-MM-DD HH:MM"
        " (optionally with +HH:MM or Z)"
    )
    if not (_MONTH.search(text) or _ISO_DAY.match(text)) or len(text) > 64:
        raise problem
    from dateutil import parser

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unknown zone abbreviation is not guessed
        try:  # twice, from two defaults: a part the text does not give differs
            parsed, other = (
                parser.parse(text, default=default, dayfirst=False, yearfirst=True)
                for default in (datetime(2000, 1, 1), datetime(2001, 2, 2, 1, 1))
            )
        except (ValueError, OverflowError, parser.UnknownTimezoneWarning):
            raise problem from None
    if parsed.date() != other.date():
        raise ValueError(f"{text!r} does not name a whole date (year, month and day)")
    offset = parsed.utcoffset()
    if offset is not None:  # a fixed offset, never "the local zone of this machine"
        parsed = parsed.replace(tzinfo=timezone(offset))
    return _from_datetime(parsed, zone, has_time=parsed.time() == other.time())


def _has_time(value: datetime) -> bool:
    return (value.hour, value.minute, value.second, value.microsecond) != (0, 0, 0, 0)


FIRST_YEAR, LAST_YEAR = 1970, 2999  # a release date outside these is a typing error


def _from_datetime(value: datetime, zone: tzinfo, *, has_time: bool) -> When:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"{value.date().isoformat()} is out of range; a release date lies between"
            f" {FIRST_YEAR} and {LAST_YEAR}"
        )
    if value.tzinfo is None:
        return When(value.replace(tzinfo=zone), has_time, False)
    return When(value, has_time, True)


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?$", re.IGNORECASE)


def with_time(when: When, cell: object) -> When:
    """``when`` (a day) at the time of day in ``cell`` (``14:30``, ``2:30 PM``, a time cell).

    A ``when`` that already has a time, or an empty ``cell``, is returned as it
    is. Raises ``ValueError`` when the cell is not a time of day.
    """
    if when.has_time or cell is None or (isinstance(cell, str) and not cell.strip()):
        return when
    if isinstance(cell, datetime):
        clock = cell.time()
    elif isinstance(cell, time):
        clock = cell
    else:
        match = _CLOCK.match(str(cell).strip())
        if not match:
            raise ValueError(f"{str(cell).strip()!r} is not a time of day; write it as HH:MM")
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if match[4]:
            if not 1 <= hour <= 12:
                raise ValueError(f"{str(cell).strip()!r} is not a time of day")
            hour = hour % 12 + (12 if match[4].lower().startswith("p") else 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"{str(cell).strip()!r} is not a time of day")
        clock = time(hour, minute, second)
    moment = datetime.combine(when.at.date(), clock.replace(tzinfo=None), tzinfo=when.at.tzinfo)
    return When(moment, True, when.zone_given)
