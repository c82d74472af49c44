"""The column types' own processors: what SQLAlchemy's would give, in fewer calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from interlock.storage.types import Timestamp, load_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_stored_json_reads_back_as_json_loads_reads_it(value: object) -> None:
    text = json.dumps(value)  # as SQLAlchemy writes a JSON column
    assert load_json(text) == json.loads(text)


@given(st.text(max_size=30))
def test_any_other_text_reads_or_fails_as_json_loads_does(text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as raised:
            load_json(text)
        assert str(raised.value) == str(exc)
    else:
        assert load_json(text) == expected


@pytest.mark.parametrize("text", ["  {}", "{} ", "[1, 2]\n", "NaN", "5", "{}x", "", b"[1]"])
def test_blanks_numbers_and_bytes_read_as_json_loads_reads_them(text: str | bytes) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):
            load_json(text)
    else:
        assert repr(load_json(text)) == repr(expected)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_timestamps_bind_and_read_as_their_own_methods_say(dialect: object) -> None:
    kind = Timestamp()
    bind = kind.bind_processor(dialect)  # type: ignore[arg-type]
    read = kind.result_processor(dialect, None)  # type: ignore[arg-type]
    at = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=UTC)
    for value in (at, at.astimezone(timezone(timedelta(hours=5))), 1_700_000_000, 2.5, None):
        assert bind(value) == kind.process_bind_param(value, dialect)  # type: ignore[arg-type]
    assert read(bind(at)) == at and read(None) is None
    assert read(1_700_000_000.25) == kind.process_result_value(1_700_000_000.25, dialect)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 12, 6, 9, 30))


def test_load_json_passes_a_number_sqlite_hands_back_as_it_is() -> None:
    """As SQLAlchemy's own SQLite JSON processor does (prepared statements read JSON
    columns with load_json alone)."""
    from interlock.storage.types import load_json

    assert load_json(5) == 5 and load_json(2.5) == 2.5
    assert load_json('{"a": [1, 2]}') == {"a": [1, 2]}
    assert load_json(' {"a": 1} ') == {"a": 1}
