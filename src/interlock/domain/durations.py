"""Durations written the way people write them: ``90s``, ``5m``, ``2h``, ``1h30m``, ``7d``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class DurationTooLong(ValueError):
    """A duration past its bound (see :mod:`interlock.domain.bounds`)."""


def _max_duration() -> float:
    # Imported when needed: bounds loads annotated_types (25 ms), and the CLI
    # only formats durations (see tests/unit/test_cli_startup.py).
    from interlock.domain.bounds import MAX_DURATION

    return MAX_DURATION


def parse_duration(value: str | int | float, *, maximum: float | None = None) -> float:
    """Seconds in ``value``; a bare number counts as seconds; at most ``maximum``.

    ``maximum`` is ``bounds.MAX_DURATION`` unless given. Raises ``ValueError``
    with a message fit for a user when the text is not a duration, and
    :class:`DurationTooLong` when it is longer than ``maximum``.
    """
    if maximum is None:
        maximum = _max_duration()
    seconds = _seconds(value)
    if seconds > maximum:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise DurationTooLong(
            f"{shown} is too long: at most {format_duration(maximum)} ({maximum:.0f}s)"
        )
    return seconds


def _seconds(value: str | int | float) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 5m or 2h, not a boolean")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("expected a duration like 90s, 5m or 2h, not an infinite number")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return math.inf if value > 1e300 else float(value)  # an int too large for a float
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 90s, 5m or 2h, not {_kind(value)}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("expected a duration like 90s, 5m or 2h, got an empty string")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]  # 1e400 digits: inf
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration: write it like 90s, 5m, 2h or 1h30m")
    return total


def parse_positive_duration(value: str | int | float) -> float:
    """A duration that must be longer than zero: a timeout or an interval."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("a timeout or interval must be longer than 0s")
    return seconds


def doubled(first: float, times: int, most: float | None = None) -> float:
    """``first`` doubled ``times`` times, at most ``most``: a wait between tries that grows.

    Capped (by ``bounds.MAX_DURATION`` unless given) before it can overflow a date
    (50 retries of 1h would be 2**49 hours).
    """
    cap = _max_duration() if most is None else most
    return min(first * 2.0 ** min(max(times, 0), 64), cap)


def _kind(value: object) -> str:
    if value is None:
        return "null (leave the key out for the default)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def format_duration(seconds: float) -> str:
    """The shortest readable form: ``1h30m``, ``5m``, ``2.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        text = f"{seconds:.1f}".rstrip("0").rstrip(".")
        return f"{text}s"
    whole = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)
