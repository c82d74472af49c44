"""Figures as a reader says them: "13.2 days", "5 hours", "—" for no data."""

from __future__ import annotations

from interlock.metrics.results import Kind, MetricResult, format_value

NO_DATA = "—"


def human_duration(seconds: float | None) -> str:
    """``"13.2 days"``, ``"5.5 hours"``, ``"40 minutes"``, ``"12 seconds"``; ``"—"`` for None."""
    if seconds is None:
        return NO_DATA
    sign = "-" if seconds < 0 else ""
    value = abs(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if value >= size:
            amount = f"{value / size:.1f}".removesuffix(".0")
            return f"{sign}{amount} {unit}{'' if amount == '1' else 's'}"
    amount = f"{value:.0f}"
    return f"{sign}{amount} second{'' if amount == '1' else 's'}"


def human_value(metric: MetricResult) -> str:
    """A metric's value for a table cell: durations in words, ``—`` when there is no value."""
    if metric.value is None:
        return NO_DATA
    if metric.kind is Kind.DURATION:
        return human_duration(metric.value)
    return format_value(metric.value, metric.kind, metric.unit)
