"""Column types shared by both backends."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# JSON on SQLite, JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")


class Timestamp(TypeDecorator[datetime]):
    """A UTC instant stored as seconds since the epoch (a double) on both backends.

    Numbers make durations plain arithmetic in SQL on SQLite and PostgreSQL
    alike (lead times, waits), which the metrics queries depend on.
    """

    impl = Float(precision=53)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        return _stored(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return _instant(value)

    # The processors themselves, one call per value (SQLAlchemy's own wrap each in a
    # second call, then pass the float to the column type's processor, which leaves a
    # float as it is): a step binds and reads a dozen timestamps.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], float | None]:
        return _stored

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None]:
        return _instant


def _stored(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use UTC-aware ones")
    return float(value.timestamp())


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), UTC)


# The scanner json.loads runs, made once.
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def load_json(text: Any) -> Any:
    """``json.loads(text)``, in one call for a stored JSON text (SQLite's JSON columns).

    A text as ``json.dumps`` wrote it (no blanks around it) goes straight to the
    decoder's scanner; any other goes through ``json.loads`` itself, which
    decodes it or raises as ever.
    """
    if isinstance(text, str):
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return value
    elif isinstance(text, int | float):  # a JSON number SQLite hands back as one (as
        return text  # SQLAlchemy's own SQLite JSON processor passes it)
    return json.loads(text)


def epoch(value: datetime) -> float:
    return value.timestamp()
