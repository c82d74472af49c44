"""Pieces of the assessment: dates, columns, tag names, hotfixes, chart markup."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlock.errors import InvalidInput
from interlock.metrics.assess.dates import When, parse_when
from interlock.metrics.assess.history import semver, split_tag, tag_candidates
from interlock.metrics.assess.inputs import FIELD_WORDS, read_releases
from interlock.metrics.assess.releases import Release, find_hotfixes
from interlock.metrics.assess.svg import bar_chart
from interlock.metrics.assess.tables import parse_mapping
from interlock.vcs import tickets

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_date_without_time_is_a_day_in_the_assumed_zone() -> None:
    when = parse_when("2024-03-05", UTC)
    assert when == When(datetime(2024, 3, 5, tzinfo=UTC), has_time=False, zone_given=False)
    assert when.in_production_by() == datetime(2024, 3, 6, tzinfo=UTC)


def test_a_time_without_zone_is_read_in_the_chosen_zone() -> None:
    when = parse_when("2024-03-05 14:30", BERLIN)
    assert when is not None and when.has_time and not when.zone_given
    assert when.at.astimezone(UTC) == datetime(2024, 3, 5, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-03-05T14:30:00+01:00", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
        ("2024-03-05 14:30Z", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("2024-03-05 14:30 UTC", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("2024/3/5 14:30", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),  # Berlin assumed
    ],
)
def test_unambiguous_forms(text: str, utc: datetime) -> None:
    when = parse_when(text, BERLIN)
    assert when is not None and when.at.astimezone(UTC) == utc


def test_cells_of_a_workbook() -> None:
    assert parse_when(date(2024, 3, 5), UTC) == When(datetime(2024, 3, 5, tzinfo=UTC), False, False)
    naive = parse_when(datetime(2024, 3, 5, 10, 0), BERLIN)
    assert naive is not None and naive.at == datetime(2024, 3, 5, 10, 0, tzinfo=BERLIN)
    assert parse_when(None, UTC) is None
    assert parse_when("  ", UTC) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("05/03/2024", "ambiguous"),
        ("5.3.24", "ambiguous"),
        ("next tuesday", "not a date"),
        ("2024-13-01", "not a date"),
        (45356, "a number, not a date"),
    ],
)
def test_what_is_refused(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_when(text, UTC)


@pytest.mark.parametrize(
    ("name", "series", "version"),
    [
        ("v1.4.0", "", "1.4.0"),
        ("1.4.0", "", "1.4.0"),
        ("payments-v1.4.0", "payments", "1.4.0"),
        ("payments/1.4.0", "payments", "1.4.0"),
        ("payments@1.4.0-rc.1", "payments", "1.4.0-rc.1"),
        ("api2-1.0", "api2", "1.0"),
        ("release-2024.03.05", "release", "2024.03.05"),
        ("stable", "stable", "stable"),
    ],
)
def test_tag_series_and_version(name: str, series: str, version: str) -> None:
    assert split_tag(name) == (series, version)


def test_tag_candidates_prefer_the_service_own_tag() -> None:
    names = tag_candidates("Payments", "v1.4.0")
    assert names[0] == "payments-1.4.0"
    assert names[-2:] == ["1.4.0", "v1.4.0"]
    assert semver("release 2.10.3") == (2, 10, 3)
    assert semver("1.2") is None


def release(version: str, when: datetime | date, service: str = "api", notes: str = "") -> Release:
    moment = parse_when(when, UTC)
    assert moment is not None
    return Release(f"{service} {version}", service, version, moment, notes=notes)


def test_hotfixes_are_quick_patch_releases_or_noted_as_such() -> None:
    t0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    releases = [
        release("1.0.0", t0),
        release("1.0.1", t0 + timedelta(days=1)),  # patch within 3 days: hotfix
        release("1.1.0", t0 + timedelta(days=7)),  # minor: not a hotfix
        release("1.1.1", t0 + timedelta(days=12)),  # patch, but 5 days later
        release("1.2.0", t0 + timedelta(days=13), notes="Hot-fix for the login page"),
        release("2.0.0", date(2024, 4, 1), service="web"),
        release("2.0.1", date(2024, 4, 4), service="web"),  # three calendar days: hotfix
    ]
    found = find_hotfixes(releases, 3 * 86400, UTC)
    assert [(h.broken.version, h.fix.version) for h in found] == [
        ("1.0.0", "1.0.1"),
        ("1.1.1", "1.2.0"),
        ("2.0.0", "2.0.1"),
    ]
    assert found[0].reason == "api 1.0.1 1 day after 1.0.0"
    assert found[1].reason == "notes of api 1.2.0 say hotfix; it follows api 1.1.1"


def test_map_pairs() -> None:
    assert parse_mapping(["Went live=date", "Owner=who"], FIELD_WORDS) == {
        "date": "Went live",
        "run_by": "Owner",
    }
    with pytest.raises(InvalidInput, match="write it as 'Column header=field'"):
        parse_mapping(["Went live"], FIELD_WORDS)
    with pytest.raises(InvalidInput, match="unknown field 'colour'"):
        parse_mapping(["Paint=colour"], FIELD_WORDS)


def test_missing_date_column_names_the_headers(tmp_path: Path) -> None:
    sheet = tmp_path / "r.csv"
    sheet.write_text("Happened;Service\n2024-01-01;api\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no column for date .*'Happened'.*--map 'Header=date'"):
        read_releases(sheet, zone=UTC)
    read = read_releases(sheet, zone=UTC, mapping=["happened=date"])  # case ignored
    assert [r.services for r in read.releases] == [("api",)]  # ';' separated: sniffed


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        read_releases(tmp_path / "missing.csv", zone=UTC)
    old = tmp_path / "r.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InvalidInput, match="save it as .xlsx or .csv"):
        read_releases(old, zone=UTC)
    fake = tmp_path / "r.xlsx"
    fake.write_text("not a zip", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not a readable .xlsx"):
        read_releases(fake, zone=UTC)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Date,Who\n2024-01-01,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="save it as 'CSV UTF-8'"):
        read_releases(latin, zone=UTC)


def test_chart_labels_are_escaped() -> None:
    svg = bar_chart(["<script>", "b&c"], [1, 2], title="Releases <by> person")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "b&amp;c" in svg
    assert bar_chart([], [], title="none") == ""


def test_tickets_are_found_once_in_order() -> None:
    assert tickets("PAY-2 and OPS-10, again PAY-2; not pay-3") == ("PAY-2", "OPS-10")
    assert tickets("see #12 and #7", r"#\d+") == ("#12", "#7")
    with pytest.raises(InvalidInput, match="not a regular expression"):
        tickets("x", "(")


def test_row_numbers_count_records_as_a_spreadsheet_does(tmp_path: Path) -> None:
    sheet = tmp_path / "r.csv"
    sheet.write_text(
        'date,service,notes\n2024-01-01,api,"two\nlines"\n\n2024-13-01,api,\n2024-01-03,api,\n',
        encoding="utf-8",
    )
    read = read_releases(sheet, zone=UTC)
    # row 2 spans two lines; row 3 is blank; row 4 is the bad one
    assert [p.row for p in read.problems] == [4]
    assert [r.row for r in read.releases] == [2, 5]
    assert read.releases[0].notes == "two\nlines"


def test_a_workbook_sheet_by_name(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Notes"
    data = book.create_sheet("Prod releases")
    data.append(["Date", "Service", "Version"])
    data.append([datetime(2024, 1, 2, 9, 30), "api", 1.5])  # a version typed as a number
    path = tmp_path / "r.xlsx"
    book.save(path)
    read = read_releases(path, zone=UTC, sheet="Prod releases")
    assert [(r.row, r.version) for r in read.releases] == [(2, "1.5")]
    with pytest.raises(InvalidInput, match="no sheet named 'Prod'; the sheets are: Notes, Prod"):
        read_releases(path, zone=UTC, sheet="Prod")


def test_durations_read_as_words() -> None:
    from interlock.metrics.assess.words import human_duration

    assert human_duration(None) == "—"
    assert human_duration(13 * 86400 + 5 * 3600 + 39 * 60 + 59) == "13.2 days"
    assert human_duration(86400) == "1 day"
    assert human_duration(5.5 * 3600) == "5.5 hours"
    assert human_duration(40 * 60) == "40 minutes"
    assert human_duration(0) == "0 seconds"


def test_chart_labels_fit_inside_the_picture() -> None:
    import re

    from interlock.metrics.assess.svg import bar_chart

    names = ["a.very.long.person.name@example.com", "bo"]
    svg = bar_chart(names, [3.0, 1.0], title="people")
    width, height = map(int, re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())  # type: ignore[union-attr]
    for x, y, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*rotate[^>]*>([^<]*)<', svg):
        run = len(text) * 6.6  # characters at font-size 11, slanted by 35 degrees
        assert float(x) - run * 0.82 >= 0, text  # cos 35 = 0.82: the left end is inside
        assert float(y) + run * 0.58 <= height, text  # sin 35 = 0.57: the bottom end too
    assert width == 720


def test_dates_that_name_their_month_and_headers_that_name_a_zone(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    sheet = tmp_path / "r.csv"
    sheet.write_text(
        "Deployed At (UTC),Planned [Europe/Berlin],Service\n"
        '5 Mar 2024 14:30,"March 5, 2024 10:00",api\n'
        '"Tue, 05 Mar 2024 16:00:00 +0100",2024-03-05 2:30 PM,api\n'
        "Mar 2024,,api\n",
        encoding="utf-8",
    )
    read = read_releases(sheet, zone=ZoneInfo("America/New_York"))
    berlin = ZoneInfo("Europe/Berlin")
    assert [r.when.at for r in read.releases] == [
        datetime(2024, 3, 5, 14, 30, tzinfo=UTC),  # the header says UTC, not New York
        datetime(2024, 3, 5, 15, 0, tzinfo=UTC),
    ]
    assert [r.planned.at if r.planned else None for r in read.releases] == [
        datetime(2024, 3, 5, 10, 0, tzinfo=berlin),
        datetime(2024, 3, 5, 14, 30, tzinfo=berlin),
    ]
    assert [(p.row, p.message) for p in read.problems] == [
        (4, "column 'Deployed At (UTC)': 'Mar 2024' does not name a whole date (year, month"
         " and day)")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "utc"),
    [
        ("Deployed At (UTC+1)", datetime(2024, 3, 5, 13, 30, tzinfo=UTC)),
        ("Deployed At (GMT-05:00)", datetime(2024, 3, 5, 19, 30, tzinfo=UTC)),
        ("Deployed At (+0530)", datetime(2024, 3, 5, 9, 0, tzinfo=UTC)),
    ],
)
def test_a_header_naming_an_offset_reads_its_column_there(
    tmp_path: Path, header: str, utc: datetime
) -> None:
    sheet = tmp_path / "r.csv"
    sheet.write_text(f"{header},Service\n2024-03-05 14:30,api\n", encoding="utf-8")
    [row] = read_releases(sheet, zone=UTC).releases
    assert row.when.at.astimezone(UTC) == utc


@pytest.mark.parametrize("note", ["CET", "EST", "PST", "CEST"])
def test_a_header_naming_a_zone_abbreviation_stops_the_assessment(
    tmp_path: Path, note: str
) -> None:
    # Read as UTC without a word, a column headed (CET) was an hour off in every figure.
    sheet = tmp_path / "r.csv"
    sheet.write_text(f"Deployed At ({note}),Service (API)\n2024-03-05 14:30,api\n")
    with pytest.raises(InvalidInput) as raised:
        read_releases(sheet, zone=UTC)
    detail = raised.value.detail
    assert f"'Deployed At ({note})'" in detail and "--timezone" in detail and "r.csv" in detail


def test_a_version_saying_hotfix_is_one() -> None:
    t0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    releases = [release("2.16.0", t0), release("2.16.0-hotfix1", t0 + timedelta(days=9))]
    found = find_hotfixes(releases, 3 * 86400, UTC)
    assert [(h.broken.version, h.fix.version) for h in found] == [("2.16.0", "2.16.0-hotfix1")]


def test_a_title_above_the_header_a_time_column_and_service_spellings(tmp_path: Path) -> None:
    from interlock.metrics.assess.releases import from_rows

    sheet = tmp_path / "r.csv"
    sheet.write_text(
        "Release log 2024,,,\n"
        ",,,\n"
        "Date,Time,Service,Version\n"
        "2024-03-05,14:30,Billing,2.14\n"
        "2024-03-06,2:05 PM,billing ,2.15\n"
        "2024-03-07,25:00,billing,2.16\n",
        encoding="utf-8",
    )
    read = read_releases(sheet, zone=UTC)
    assert [r.row for r in read.releases] == [4, 5, 6]  # as a spreadsheet program numbers them
    assert [r.when.at.time().isoformat() for r in read.releases] == [
        "14:30:00",
        "14:05:00",
        "00:00:00",
    ]
    assert [(p.row, p.row_used) for p in read.problems] == [(6, True)]
    assert "column 'Time': '25:00' is not a time of day" in read.problems[0].message
    assert {r.service for r in from_rows(read.releases, None)} == {"Billing"}


def test_excel_unicode_text_is_read(tmp_path: Path) -> None:
    sheet = tmp_path / "releases.txt"
    sheet.write_bytes("Date\tService\n2024-03-05\tbilling; ledger\n".encode("utf-16"))
    assert [r.services for r in read_releases(sheet, zone=UTC).releases] == [("billing", "ledger")]
