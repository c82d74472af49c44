"""Freeze periods from an iCalendar file written by the test, and its errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlock.domain.windows import WindowPolicy, decide, load_freeze_calendar
from interlock.errors import InvalidInput
from interlock.spec.windows import WindowSpec

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    body = body.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Interlock tests//EN\r\n"
        f"{body}END:VCALENDAR\r\n"
    )


def write(tmp_path: Path, *events: str, name: str = "freezes.ics") -> Path:
    path = tmp_path / name
    path.write_text(ics(*events))
    return path


def frozen_periods(path: Path, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    calendar = load_freeze_calendar(path, BERLIN)
    return sorted((f.start, f.end) for f in calendar.between(lo, hi))


def test_an_all_day_event_freezes_whole_local_days_and_dtend_is_exclusive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "UID:xmas@example\nSUMMARY:Christmas freeze\n"
        "DTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261227",
    )
    assert frozen_periods(path, utc(2026, 12, 1), utc(2027, 1, 1)) == [
        (utc(2026, 12, 23, 23, 0), utc(2026, 12, 26, 23, 0))  # 24th 00:00 to 27th 00:00 CET
    ]


def test_an_all_day_event_without_an_end_lasts_its_day(tmp_path: Path) -> None:
    path = write(tmp_path, "UID:a@x\nSUMMARY:Launch\nDTSTART;VALUE=DATE:20260701")
    assert frozen_periods(path, utc(2026, 6, 1), utc(2026, 8, 1)) == [
        (utc(2026, 6, 30, 22, 0), utc(2026, 7, 1, 22, 0))  # CEST
    ]


def test_timed_events_with_tzid_utc_and_floating_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "UID:ny@x\nSUMMARY:NY\nDTSTART;TZID=America/New_York:20260610T090000\n"
        "DTEND;TZID=America/New_York:20260610T110000",
        "UID:z@x\nSUMMARY:UTC\nDTSTART:20260611T090000Z\nDURATION:PT90M",
        "UID:f@x\nSUMMARY:Floating\nDTSTART:20260612T090000\nDTEND:20260612T100000",
    )
    assert frozen_periods(path, utc(2026, 6, 1), utc(2026, 7, 1)) == [
        (utc(2026, 6, 10, 13, 0), utc(2026, 6, 10, 15, 0)),  # EDT is UTC-4
        (utc(2026, 6, 11, 9, 0), utc(2026, 6, 11, 10, 30)),
        (utc(2026, 6, 12, 7, 0), utc(2026, 6, 12, 8, 0)),  # floating: Berlin, CEST
    ]


def test_a_weekly_rule_keeps_local_time_across_the_dst_change(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "UID:w@x\nSUMMARY:Sunday maintenance\n"
        "DTSTART;TZID=Europe/Berlin:20260315T100000\nDTEND;TZID=Europe/Berlin:20260315T120000\n"
        "RRULE:FREQ=WEEKLY;BYDAY=SU;UNTIL=20260412T235959Z\n"
        "EXDATE;TZID=Europe/Berlin:20260405T100000",
    )
    assert frozen_periods(path, utc(2026, 3, 1), utc(2026, 5, 1)) == [
        (utc(2026, 3, 15, 9, 0), utc(2026, 3, 15, 11, 0)),  # CET
        (utc(2026, 3, 22, 9, 0), utc(2026, 3, 22, 11, 0)),
        (utc(2026, 3, 29, 8, 0), utc(2026, 3, 29, 10, 0)),  # CEST from this day on
        (utc(2026, 4, 12, 8, 0), utc(2026, 4, 12, 10, 0)),  # 04-05 excluded; UNTIL ends it
    ]


def test_a_yearly_all_day_rule_without_end_repeats_every_year(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "UID:y@x\nSUMMARY:Black Friday\nDTSTART;VALUE=DATE:20261127\n"
        "DTEND;VALUE=DATE:20261128\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4FR",
    )
    assert frozen_periods(path, utc(2031, 1, 1), utc(2032, 1, 1)) == [
        (utc(2031, 11, 27, 23, 0), utc(2031, 11, 28, 23, 0))  # the 4th Friday of Nov 2031
    ]


def test_an_all_day_rule_may_end_with_a_utc_until(tmp_path: Path) -> None:
    # Some calendar programs write UNTIL in UTC even for all-day events.
    path = write(
        tmp_path,
        "UID:d@x\nSUMMARY:Week\nDTSTART;VALUE=DATE:20260601\n"
        "RRULE:FREQ=DAILY;UNTIL=20260602T220000Z",
    )
    assert len(frozen_periods(path, utc(2026, 5, 1), utc(2026, 7, 1))) == 3  # 1st to 3rd June


def test_a_moved_and_a_cancelled_occurrence(tmp_path: Path) -> None:
    master = (
        "UID:m@x\nSUMMARY:Monday freeze\nDTSTART:20260601T080000Z\nDTEND:20260601T090000Z\n"
        "RRULE:FREQ=WEEKLY;COUNT=3"
    )
    moved = (
        "UID:m@x\nSUMMARY:Monday freeze (moved)\nRECURRENCE-ID:20260608T080000Z\n"
        "DTSTART:20260609T120000Z\nDTEND:20260609T130000Z"
    )
    cancelled = (
        "UID:m@x\nSTATUS:CANCELLED\nRECURRENCE-ID:20260615T080000Z\n"
        "DTSTART:20260615T080000Z\nDTEND:20260615T090000Z"
    )
    gone = "UID:c@x\nSUMMARY:Called off\nSTATUS:CANCELLED\nDTSTART;VALUE=DATE:20260620"
    path = write(tmp_path, master, moved, cancelled, gone)
    calendar = load_freeze_calendar(path, BERLIN)
    found = sorted(calendar.between(utc(2026, 5, 1), utc(2026, 7, 1)), key=lambda f: f.start)
    assert [(f.start, f.reason) for f in found] == [
        (utc(2026, 6, 1, 8, 0), "Monday freeze"),
        (utc(2026, 6, 9, 12, 0), "Monday freeze (moved)"),
    ]


def test_the_calendar_feeds_the_gate(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    write(
        tmp_path / "config",
        "UID:r@x\nSUMMARY:Release freeze\nDTSTART;VALUE=DATE:20260209\nDTEND;VALUE=DATE:20260211",
    )
    spec = WindowSpec.model_validate(
        {
            "timezone": "Europe/Berlin",
            "allow": [{"days": ["mon", "tue", "wed", "thu"], "from": "09:00", "to": "16:00"}],
            "freeze_calendar": "freezes.ics",
        }
    )
    rules = WindowPolicy.from_spec(spec, base_dir=tmp_path / "config")
    decision = decide(datetime(2026, 2, 9, 10, 0, tzinfo=BERLIN), rules)
    assert not decision.open
    assert decision.freeze is not None and decision.freeze.source == "freezes.ics"
    assert decision.reason.startswith("frozen: Release freeze (freezes.ics, from Mon 2026-02-09")
    assert decision.opens_at == utc(2026, 2, 11, 8, 0)  # Wednesday 09:00 CET


def test_an_empty_calendar_freezes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert load_freeze_calendar(path, BERLIN).between(utc(2026, 1, 1), utc(2027, 1, 1)) == []


# --- errors name the file, and the event when one is at fault ---------------------


def test_a_missing_file(tmp_path: Path) -> None:
    spec = WindowSpec.model_validate({"timezone": "UTC", "freeze_calendar": "nope.ics"})
    with pytest.raises(InvalidInput) as caught:
        WindowPolicy.from_spec(spec, base_dir=tmp_path)
    assert f"freeze calendar {tmp_path / 'nope.ics'} does not exist" in caught.value.detail


@pytest.mark.parametrize(
    "text",
    ["", "this is not a calendar\n", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"],
)
def test_a_file_that_is_not_icalendar(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.ics"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=f"freeze calendar {path} .*(iCalendar|VCALENDAR)"):
        load_freeze_calendar(path, BERLIN)


def test_a_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read freeze calendar"):
        load_freeze_calendar(tmp_path, BERLIN)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("UID:b@x\nSUMMARY:Bad\nDTSTART:2026XX", 'event "Bad" (UID b@x): DTSTART is not valid'),
        ("UID:n@x\nSUMMARY:No start\nDTEND:20260101T100000Z", "has no DTSTART"),
        ("UID:e@x\nSUMMARY:Open end\nDTSTART:20260101T100000Z", "no DTEND or DURATION"),
        (
            "UID:r@x\nSUMMARY:Reversed\nDTSTART:20260101T100000Z\nDTEND:20260101T090000Z",
            'event "Reversed" (UID r@x) ends before it starts',
        ),
        (
            "SUMMARY:Mixed\nDTSTART;VALUE=DATE:20260101\nDTEND:20260102T090000Z",
            'event "Mixed": DTSTART and DTEND must be the same kind',
        ),
        (
            "UID:h@x\nSUMMARY:Hourly\nDTSTART:20260101T100000Z\nDURATION:PT1M\nRRULE:FREQ=MINUTELY",
            'event "Hourly" (UID h@x): RRULE FREQ=MINUTELY is not supported',
        ),
        (
            "UID:c@x\nSUMMARY:Both\nDTSTART:20260101T100000Z\nDURATION:PT1H\n"
            "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260110T000000Z",
            "both COUNT and UNTIL",
        ),
        (
            "UID:z@x\nSUMMARY:Zone\nDTSTART;TZID=Mars/Base:20260101T100000\nDURATION:PT1H",
            "DTSTART names the time zone 'Mars/Base', which neither the file",
        ),
        (
            "UID:i@x\nSUMMARY:Zero\nDTSTART:20260101T100000Z\nDURATION:PT1H\n"
            "RRULE:FREQ=DAILY;INTERVAL=0",
            "INTERVAL must be 1 or more",
        ),
        (
            "UID:v@x\nSUMMARY:Never\nDTSTART:20260101T100000Z\nDURATION:PT1H\n"
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "it never occurs",
        ),
        (
            "UID:p@x\nSUMMARY:Period\nDTSTART:20260101T100000Z\nDURATION:PT1H\n"
            "RDATE;VALUE=PERIOD:20260105T100000Z/PT2H",
            "RDATE periods are not supported",
        ),
    ],
)
def test_a_bad_event_is_named(tmp_path: Path, event: str, message: str) -> None:
    path = write(tmp_path, event)
    with pytest.raises(InvalidInput) as caught:
        load_freeze_calendar(path, BERLIN)
    assert caught.value.detail.startswith(f"freeze calendar {path}: ")
    assert message in caught.value.detail
