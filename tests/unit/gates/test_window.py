"""The window gate: weekly windows, freezes and daylight-saving changes, with explicit instants.

Europe/Berlin switches to summer time on the last Sunday of March (02:00 CET ->
03:00 CEST; 2026-03-29) and back on the last Sunday of October (03:00 CEST ->
02:00 CET; 2026-10-25). Expected instants are written in UTC so that an offset
mistake cannot hide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from interlock.domain.wallclock import local_instant
from interlock.domain.windows import HORIZON, WindowPolicy, decide, next_open
from interlock.errors import InvalidInput
from interlock.spec.windows import WindowSpec

BERLIN = ZoneInfo("Europe/Berlin")

BLOCK = """\
timezone: Europe/Berlin
allow:
  - days: [mon, tue, wed, thu]
    from: "09:00"
    to: "16:00"
freeze:
  - from: 2026-12-20
    to: 2027-01-03
    reason: year-end freeze
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=BERLIN)


def policy(**block: Any) -> WindowPolicy:
    block.setdefault("timezone", "Europe/Berlin")
    return WindowPolicy.from_spec(WindowSpec.model_validate(block))


def office_hours(**extra: Any) -> WindowPolicy:
    return policy(allow=[{"days": ["mon", "tue", "wed", "thu"], "from": "09:00", "to": "16:00"}])


# --- the config block -------------------------------------------------------


def test_the_documented_block_loads_from_yaml() -> None:
    spec = WindowSpec.model_validate(yaml.safe_load(BLOCK))
    assert spec.zone == BERLIN
    assert spec.allow[0].days == ["mon", "tue", "wed", "thu"]
    assert (spec.allow[0].start, spec.allow[0].end) == ("09:00", "16:00")
    (freeze,) = spec.freezes()
    assert freeze.start == utc(2026, 12, 19, 23, 0)  # 2026-12-20 00:00 CET
    assert freeze.end == utc(2027, 1, 3, 23, 0)  # the whole of 2027-01-03 is frozen
    assert freeze.reason == "year-end freeze"


def test_the_json_schema_can_be_generated() -> None:
    schema = WindowSpec.model_json_schema(by_alias=True)
    assert {"timezone", "allow", "freeze", "freeze_calendar"} <= set(schema["properties"])


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"timezone": "Europe/Berln"}, "did you mean Europe/Berlin?"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        (
            {"allow": [{"days": ["mon", "funday"], "from": "09:00", "to": "16:00"}]},
            "'funday' is not a day: use mon, tue",
        ),
        ({"allow": [{"days": [], "from": "09:00", "to": "16:00"}]}, "at least 1 item"),
        ({"allow": [{"days": ["mon"], "from": "9am", "to": "16:00"}]}, 'write it as "HH:MM"'),
        ({"allow": [{"days": ["mon"], "from": "09:00", "to": "24:30"}]}, 'write it as "HH:MM"'),
        ({"allow": [{"days": ["mon"], "from": "09:00", "to": 960}]}, 'in quotes, e.g. "16:00"'),
        ({"allow": [{"days": ["mon"], "from": "09:00", "to": "09:00"}]}, 'to: "24:00"'),
        ({"allow": [{"days": ["mon"], "from": "24:00", "to": "02:00"}]}, 'use "00:00"'),
        ({"allow": [{"days": ["mon"], "from": "09:00", "until": "16:00"}]}, "until"),
        ({"freeze": [{"from": "2026-12-20", "to": "2026-12-01"}]}, "swap from and to"),
        ({"freeze": [{"from": "next week", "to": "2026-12-01"}]}, "is not a date"),
    ],
)
def test_bad_blocks_say_what_is_wrong(block: dict[str, Any], message: str) -> None:
    block.setdefault("timezone", "Europe/Berlin")
    with pytest.raises(ValidationError) as caught:
        WindowSpec.model_validate(block)
    assert message in str(caught.value)


def test_an_unquoted_time_in_yaml_is_caught() -> None:
    # YAML 1.1 reads 16:00 without quotes as the number 960.
    block = yaml.safe_load("timezone: UTC\nallow: [{days: [fri], from: '09:00', to: 16:00}]")
    with pytest.raises(ValidationError, match='put the time in quotes, e.g. "16:00"'):
        WindowSpec.model_validate(block)


def test_day_names_may_be_written_in_full_and_in_capitals() -> None:
    spec = WindowSpec.model_validate(
        {"timezone": "UTC", "allow": [{"days": ["Monday", "FRI"], "from": "9:00", "to": "17:30"}]}
    )
    assert spec.allow[0].days == ["mon", "fri"]
    assert spec.allow[0].start == "09:00"


# --- inside and outside the weekly windows ------------------------------------


def test_inside_the_window_it_is_open_until_the_window_closes() -> None:
    decision = decide(berlin(2026, 2, 3, 10, 30), office_hours())  # a Tuesday
    assert decision.open
    assert decision.opens_at is None
    assert decision.closes_at == utc(2026, 2, 3, 15, 0)  # 16:00 CET
    assert decision.freeze is None
    assert "inside the deploy window mon, tue, wed, thu 09:00-16:00" in decision.reason


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    rules = office_hours()
    assert decide(berlin(2026, 2, 3, 9, 0), rules).open
    assert decide(berlin(2026, 2, 3, 15, 59, 59), rules).open
    assert not decide(berlin(2026, 2, 3, 16, 0), rules).open
    assert not decide(berlin(2026, 2, 3, 8, 59, 59), rules).open


def test_a_release_reaching_the_closed_window_on_thursday_evening_waits_for_monday() -> None:
    decision = decide(berlin(2026, 2, 5, 17, 0), office_hours())  # Thursday 17:00 CET
    assert not decision.open
    assert decision.opens_at == utc(2026, 2, 9, 8, 0)  # Monday 09:00 CET
    assert decision.opens_at is not None
    assert decision.opens_at.utcoffset() == timedelta(hours=1)
    assert decision.opens_at.tzinfo == BERLIN
    assert decision.closes_at == utc(2026, 2, 9, 15, 0)
    assert "outside the deploy windows" in decision.reason
    assert "opens at Mon 2026-02-09 09:00 CET" in decision.reason
    assert next_open(berlin(2026, 2, 5, 17, 0), office_hours()) == decision.opens_at


def test_next_open_is_the_instant_itself_when_open() -> None:
    at = berlin(2026, 2, 4, 11, 0)
    assert next_open(at, office_hours()) == at


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(InvalidInput, match="aware datetime"):
        decide(datetime(2026, 2, 4, 11, 0), office_hours())


def test_without_windows_deploys_are_allowed_at_any_time() -> None:
    decision = decide(utc(2026, 7, 4, 3, 0), policy())
    assert decision.open
    assert decision.closes_at is None
    assert "no deploy windows are configured" in decision.reason


def test_adjacent_windows_join_up() -> None:
    rules = policy(
        allow=[
            {"days": ["mon"], "from": "00:00", "to": "24:00"},
            {"days": ["tue"], "from": "00:00", "to": "12:00"},
            {"days": ["tue"], "from": "12:00", "to": "18:00"},
        ]
    )
    decision = decide(berlin(2026, 2, 2, 10, 0), rules)
    assert decision.closes_at == utc(2026, 2, 3, 17, 0)  # Tuesday 18:00 CET


# --- daylight-saving changes ----------------------------------------------------


def test_spring_forward_week_thursday_evening_opens_monday_at_nine_summer_time() -> None:
    # Thursday 2026-03-26 is CET (+01:00); Monday 2026-03-30 is CEST (+02:00).
    decision = decide(berlin(2026, 3, 26, 17, 0), office_hours())
    assert decision.opens_at == utc(2026, 3, 30, 7, 0)
    assert decision.opens_at is not None
    assert decision.opens_at.utcoffset() == timedelta(hours=2)
    assert decision.closes_at == utc(2026, 3, 30, 14, 0)
    assert "opens at Mon 2026-03-30 09:00 CEST" in decision.reason


def test_fall_back_week_thursday_evening_opens_monday_at_nine_winter_time() -> None:
    decision = decide(berlin(2026, 10, 22, 17, 0), office_hours())
    assert decision.opens_at == utc(2026, 10, 26, 8, 0)
    assert decision.opens_at is not None
    assert decision.opens_at.utcoffset() == timedelta(hours=1)


def test_a_window_on_the_switch_days_keeps_its_local_hours() -> None:
    rules = policy(allow=[{"days": ["sun"], "from": "09:00", "to": "16:00"}])
    march = decide(utc(2026, 3, 29, 0, 0), rules)
    assert (march.opens_at, march.closes_at) == (utc(2026, 3, 29, 7, 0), utc(2026, 3, 29, 14, 0))
    october = decide(utc(2026, 10, 25, 0, 0), rules)
    assert (october.opens_at, october.closes_at) == (
        utc(2026, 10, 25, 8, 0),
        utc(2026, 10, 25, 15, 0),
    )


def test_a_skipped_local_time_is_the_moment_the_clock_jumps() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: the clock jumps from 02:00 CET to 03:00 CEST.
    assert local_instant(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    rules = policy(allow=[{"days": ["sun"], "from": "02:30", "to": "04:00"}])
    decision = decide(utc(2026, 3, 29, 0, 30), rules)
    assert decision.opens_at == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert decision.closes_at == utc(2026, 3, 29, 2, 0)  # 04:00 CEST: one hour that day
    assert not decide(utc(2026, 3, 29, 0, 59, 59), rules).open
    assert decide(utc(2026, 3, 29, 1, 0), rules).open


def test_a_window_inside_the_skipped_hour_does_not_open_that_day() -> None:
    rules = policy(allow=[{"days": ["sun"], "from": "02:15", "to": "02:45"}])
    decision = decide(utc(2026, 3, 28, 12, 0), rules)
    assert decision.opens_at == utc(2026, 4, 5, 0, 15)  # next Sunday, 02:15 CEST


def test_a_repeated_local_time_is_its_first_occurrence() -> None:
    # 02:00-03:00 happens twice in Berlin on 2026-10-25 (CEST, then CET).
    assert local_instant(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)
    rules = policy(allow=[{"days": ["sun"], "from": "02:30", "to": "03:30"}])
    decision = decide(utc(2026, 10, 25, 0, 0), rules)
    assert decision.opens_at is not None and decision.closes_at is not None
    # Python's == between zones is always False for a time in a repeated hour (PEP 495).
    assert decision.opens_at.astimezone(UTC) == utc(2026, 10, 25, 0, 30)  # the first 02:30
    assert decision.opens_at.utcoffset() == timedelta(hours=2)  # CEST
    assert decision.closes_at == utc(2026, 10, 25, 2, 30)  # 03:30 CET: two hours that day
    assert decide(utc(2026, 10, 25, 1, 15), rules).open  # 02:15 CET, the second pass


# --- a window that crosses midnight ---------------------------------------------


def test_a_window_crossing_midnight_closes_the_next_day() -> None:
    rules = policy(allow=[{"days": ["fri"], "from": "22:00", "to": "02:00"}])
    friday_evening = decide(berlin(2026, 2, 6, 21, 0), rules)
    assert friday_evening.opens_at == utc(2026, 2, 6, 21, 0)  # Friday 22:00 CET
    saturday_night = decide(berlin(2026, 2, 7, 1, 0), rules)
    assert saturday_night.open
    assert saturday_night.closes_at == utc(2026, 2, 7, 1, 0)  # Saturday 02:00 CET
    assert not decide(berlin(2026, 2, 7, 2, 0), rules).open
    assert not decide(berlin(2026, 2, 8, 1, 0), rules).open  # Sunday: no window opened Sat


def test_a_window_crossing_midnight_into_the_skipped_hour() -> None:
    # Saturday 2026-03-28 22:00 CET to Sunday 02:00, which the clock skips: it ends at 03:00 CEST.
    rules = policy(allow=[{"days": ["sat"], "from": "22:00", "to": "02:00"}])
    decision = decide(utc(2026, 3, 28, 23, 30), rules)
    assert decision.open
    assert decision.closes_at == utc(2026, 3, 29, 1, 0)


def test_a_window_may_end_at_midnight() -> None:
    rules = policy(allow=[{"days": ["wed"], "from": "20:00", "to": "24:00"}])
    decision = decide(berlin(2026, 2, 4, 23, 59), rules)
    assert decision.open
    assert decision.closes_at == utc(2026, 2, 4, 23, 0)  # Thursday 00:00 CET


# --- freezes ----------------------------------------------------------------------


def test_a_freeze_overrides_the_window() -> None:
    rules = WindowPolicy.from_spec(WindowSpec.model_validate(yaml.safe_load(BLOCK)))
    decision = decide(berlin(2026, 12, 21, 10, 0), rules)  # a Monday inside its window
    assert not decision.open
    assert decision.freeze is not None
    assert decision.freeze.reason == "year-end freeze"
    assert decision.reason.startswith("frozen: year-end freeze (interlock.yaml")
    # 2027-01-03 (a Sunday) is frozen to its end; the first window after is Monday 09:00.
    assert decision.opens_at == utc(2027, 1, 4, 8, 0)


def test_the_last_day_of_a_date_freeze_is_frozen_to_its_end() -> None:
    rules = policy(freeze=[{"from": "2026-06-01", "to": "2026-06-03"}])
    assert not decide(berlin(2026, 6, 3, 23, 59), rules).open
    assert decide(berlin(2026, 6, 4, 0, 0), rules).open
    assert decide(berlin(2026, 5, 31, 23, 59), rules).closes_at == utc(2026, 5, 31, 22, 0)


def test_a_freeze_with_times_splits_the_window() -> None:
    rules = policy(
        allow=[{"days": ["wed"], "from": "09:00", "to": "16:00"}],
        freeze=[{"from": "2026-06-10T12:00", "to": "2026-06-10T14:00", "reason": "DB upgrade"}],
    )
    before = decide(berlin(2026, 6, 10, 11, 0), rules)
    assert before.open and before.closes_at == utc(2026, 6, 10, 10, 0)  # 12:00 CEST
    during = decide(berlin(2026, 6, 10, 12, 0), rules)
    assert not during.open and during.opens_at == utc(2026, 6, 10, 12, 0)  # 14:00 CEST
    assert "DB upgrade" in during.reason
    after = decide(berlin(2026, 6, 10, 14, 0), rules)
    assert after.open and after.closes_at == utc(2026, 6, 10, 14, 0)  # 16:00 CEST


def test_a_freeze_time_with_an_offset_stands_for_itself() -> None:
    rules = policy(freeze=[{"from": "2026-06-10T12:00:00+00:00", "to": "2026-06-10T13:00Z"}])
    assert not decide(utc(2026, 6, 10, 12, 30), rules).open
    assert decide(utc(2026, 6, 10, 13, 0), rules).open


def test_without_windows_a_freeze_is_the_only_closing() -> None:
    rules = policy(freeze=[{"from": "2026-08-01", "to": "2026-08-02", "reason": "launch"}])
    decision = decide(utc(2026, 7, 1, 0, 0), rules)
    assert decision.open
    assert decision.closes_at == utc(2026, 7, 31, 22, 0)


def test_a_freeze_beyond_the_horizon_never_opens() -> None:
    rules = policy(freeze=[{"from": "2026-01-01", "to": "2099-12-31", "reason": "moratorium"}])
    decision = decide(utc(2026, 6, 1, 0, 0), rules)
    assert not decision.open
    assert decision.opens_at is None
    assert f"does not open in the next {HORIZON.days} days" in decision.reason
    assert next_open(utc(2026, 6, 1, 0, 0), rules) is None


def test_overlapping_freezes_report_the_longest() -> None:
    rules = policy(
        freeze=[
            {"from": "2026-06-01", "to": "2026-06-05", "reason": "short"},
            {"from": "2026-06-02", "to": "2026-06-20", "reason": "long"},
        ]
    )
    decision = decide(berlin(2026, 6, 3, 12, 0), rules)
    assert decision.freeze is not None and decision.freeze.reason == "long"
    assert decision.opens_at == utc(2026, 6, 20, 22, 0)
