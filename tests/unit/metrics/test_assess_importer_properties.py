"""Property tests of the spreadsheet importer: no input crashes it, every error names its place.

Hypothesis writes CSV files (text and raw bytes) and XLSX workbooks (openpyxl)
of any shape; reading them either gives rows, with each problem naming its
file, row and column, or stops with :class:`InvalidInput` naming the file.
Example counts are bounded so the file runs in seconds.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock.errors import InvalidInput
from interlock.metrics.assess.dates import parse_when
from interlock.metrics.assess.inputs import (
    DEFAULT_SERVICE_SEPARATORS,
    read_incidents,
    read_releases,
    split_services,
)

EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADERS = st.sampled_from(
    ["Date", "Deployed At (UTC)", "Service(s)", "Components", "Version", "Release Captain",
     "Approver", "Planned", "Notes", "Status", "Type", "opened", "resolved", "", "Ticket"]
)  # fmt: skip
CELL_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["2024-03-05", "2024-03-05 14:30", "2024/3/5", "05/03/2024", "2024-02-30",
         "2024-03-05T14:30:00+01:00", "2024-03-05 14:30Z", "failed", "rolled back", "x; y, z",
         "1.10", "9999-12-31", "0001-01-01 00:00+05:00"]
    ),
)  # fmt: skip
CELL = st.one_of(
    st.none(),
    CELL_TEXT,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=date(1900, 1, 1)),
    st.datetimes(min_value=datetime(1900, 1, 1)),
)


def _read(path: Path) -> None:
    for reader in (read_releases, read_incidents):
        try:
            sheet = reader(path, zone=UTC)
        except InvalidInput as exc:
            assert path.name in str(exc) or "--map" in str(exc), exc
            continue
        for problem in sheet.problems:
            text = str(problem)
            assert text.startswith(f"{path.name}, row {problem.row}:"), text
            assert problem.row >= 2  # the header is row 1 or later; rows come after it
            assert "column '" in text or "service '" in text, text


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@EXAMPLES
@given(
    header=st.lists(HEADERS, min_size=1, max_size=7),
    rows=st.lists(st.lists(CELL_TEXT, max_size=8), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_csv_reads_or_stops_with_a_message_naming_its_place(
    header: list[str], rows: list[list[str]], delimiter: str
) -> None:
    lines = [delimiter.join(_csv_cell(c) for c in line) for line in [header, *rows]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "releases.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _read(path)


@EXAMPLES
@given(data=st.binary(max_size=400))
def test_any_bytes_as_csv_never_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "releases.csv"
        path.write_bytes(b"Date,Service\n" + data)
        _read(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.lists(st.one_of(HEADERS, st.none()), min_size=1, max_size=6),
    rows=st.lists(st.lists(CELL, max_size=7), max_size=6),
)
def test_any_workbook_reads_or_stops_with_a_message_naming_its_place(
    header: list[str | None], rows: list[list[object]]
) -> None:
    import openpyxl
    from openpyxl.utils.exceptions import IllegalCharacterError

    book = openpyxl.Workbook()
    sheet = book.active
    try:
        for row in [header, *rows]:
            sheet.append(row)
    except (IllegalCharacterError, ValueError, TypeError):
        return  # openpyxl itself refuses to write such a cell: no workbook to read
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "releases.xlsx"
        book.save(path)
        _read(path)


@EXAMPLES
@given(value=CELL)
def test_a_cell_is_a_moment_none_or_a_value_error(value: object) -> None:
    try:
        when = parse_when(value, UTC)
    except ValueError as exc:
        assert str(exc)
        return
    assert when is None or when.at.tzinfo is not None
    if when is not None:  # the day after is still a date: "live by the end of that day"
        assert when.in_production_by() >= when.at


@EXAMPLES
@given(cell=st.text(max_size=60))
def test_a_service_cell_splits_into_clean_names(cell: str) -> None:
    names = split_services(cell, DEFAULT_SERVICE_SEPARATORS)
    assert len(names) == len(set(names))
    for name in names:
        assert name and name == name.strip()
        assert not set(DEFAULT_SERVICE_SEPARATORS) & set(name)
