"""DORA performance bands (elite, high, medium, low) as published, and how a value is placed.

Each report describes its clusters in words ("between once per day and once
per week"). Each band's *limit* here is the worse end of its published range,
in the metric's own unit: deployments per day, seconds, or a fraction. A value
gets the best band whose limit it meets (a value equal to a limit meets it);
a value in a gap between two published ranges therefore gets the next band
down, and anything worse than every limit gets the last band.

Some published tables are out of order: in the 2024 report medium's change
failure rate (10%) is better than high's (20%). The limits are made monotone
before use (a running maximum for lower-is-better metrics, a running minimum
for higher-is-better ones), so a better value never gets a worse band; a band
whose limit collapses onto the band above it can then take no value, and the
note says so.

Readings of the words: "on demand (multiple deploys per day)" is taken as at
least one deployment per working day on average (5 per 7 days); a month is 30
days and six months 180 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interlock.metrics.definitions import BandReport

HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
MONTH = 30 * DAY
SIX_MONTHS = 180 * DAY


class Metric(StrEnum):
    DEPLOYMENT_FREQUENCY = "deployment_frequency"  # deployments per day, higher is better
    LEAD_TIME = "lead_time"  # seconds, lower is better
    CHANGE_FAILURE_RATE = "change_failure_rate"  # fraction, lower is better
    TIME_TO_RESTORE = "time_to_restore"  # seconds, lower is better


HIGHER_IS_BETTER = frozenset({Metric.DEPLOYMENT_FREQUENCY})


@dataclass(frozen=True)
class Band:
    name: str  # elite, high, medium, low
    published: str  # the report's words
    limit: float | None  # worse end of the range; None for the last band


@dataclass(frozen=True)
class Placement:
    """Where a value falls, with the words to print next to it."""

    band: str
    published: str
    note: str  # e.g. "DORA 2024: high (between once per day and once per week)"
    caveat: str = ""  # how an out-of-order published table was read, if it was


_ON_DEMAND = "on demand (multiple deploys per day)"
_DAILY_WEEKLY = "between once per day and once per week"
_WEEKLY_MONTHLY = "between once per week and once per month"
_MONTHLY_6 = "between once per month and once every six months"

TABLES: dict[BandReport, dict[Metric, tuple[Band, ...]]] = {
    BandReport.DORA_2021: {
        Metric.DEPLOYMENT_FREQUENCY: (
            Band("elite", _ON_DEMAND, 5 / 7),
            Band("high", "between once per week and once per month", 1 / 30),
            Band("medium", _MONTHLY_6, 1 / 180),
            Band("low", "fewer than once every six months", None),
        ),
        Metric.LEAD_TIME: (
            Band("elite", "less than one hour", HOUR),
            Band("high", "between one day and one week", WEEK),
            Band("medium", "between one month and six months", SIX_MONTHS),
            Band("low", "more than six months", None),
        ),
        Metric.CHANGE_FAILURE_RATE: (
            Band("elite", "0%-15%", 0.15),
            Band("high", "16%-30%", 0.30),
            Band("medium", "16%-30%", 0.30),
            Band("low", "16%-30%", None),
        ),
        Metric.TIME_TO_RESTORE: (
            Band("elite", "less than one hour", HOUR),
            Band("high", "less than one day", DAY),
            Band("medium", "between one day and one week", WEEK),
            Band("low", "more than six months", None),
        ),
    },
    BandReport.DORA_2023: {
        Metric.DEPLOYMENT_FREQUENCY: (
            Band("elite", _ON_DEMAND, 5 / 7),
            Band("high", _DAILY_WEEKLY, 1 / 7),
            Band("medium", _WEEKLY_MONTHLY, 1 / 30),
            Band("low", _WEEKLY_MONTHLY, None),
        ),
        Metric.LEAD_TIME: (
            Band("elite", "less than one day", DAY),
            Band("high", "between one day and one week", WEEK),
            Band("medium", "between one week and one month", MONTH),
            Band("low", "between one week and one month", None),
        ),
        Metric.CHANGE_FAILURE_RATE: (
            Band("elite", "5%", 0.05),
            Band("high", "10%", 0.10),
            Band("medium", "15%", 0.15),
            Band("low", "64%", None),
        ),
        Metric.TIME_TO_RESTORE: (
            Band("elite", "less than one hour", HOUR),
            Band("high", "less than one day", DAY),
            Band("medium", "between one day and one week", WEEK),
            Band("low", "between one month and six months", None),
        ),
    },
    BandReport.DORA_2024: {
        Metric.DEPLOYMENT_FREQUENCY: (
            Band("elite", _ON_DEMAND, 5 / 7),
            Band("high", _DAILY_WEEKLY, 1 / 7),
            Band("medium", _WEEKLY_MONTHLY, 1 / 30),
            Band("low", _MONTHLY_6, None),
        ),
        Metric.LEAD_TIME: (
            Band("elite", "less than one day", DAY),
            Band("high", "between one day and one week", WEEK),
            Band("medium", "between one week and one month", MONTH),
            Band("low", "between one month and six months", None),
        ),
        Metric.CHANGE_FAILURE_RATE: (
            Band("elite", "5%", 0.05),
            Band("high", "20%", 0.20),
            Band("medium", "10%", 0.10),
            Band("low", "40%", None),
        ),
        Metric.TIME_TO_RESTORE: (
            Band("elite", "less than one hour", HOUR),
            Band("high", "less than one day", DAY),
            Band("medium", "less than one day", DAY),
            Band("low", "between one week and one month", None),
        ),
    },
}


def monotone_limits(metric: Metric, bands: tuple[Band, ...]) -> list[float | None]:
    """The limits made monotone: no band may demand more than the band above it."""
    higher = metric in HIGHER_IS_BETTER
    limits: list[float | None] = []
    current: float | None = None
    for band in bands:
        if band.limit is None:
            limits.append(None)
            continue
        if current is None:
            current = band.limit
        else:
            current = min(current, band.limit) if higher else max(current, band.limit)
        limits.append(current)
    return limits


def unreachable(report: BandReport, metric: Metric) -> list[str]:
    """Bands that can take no value once the limits are monotone (ties go to the better band)."""
    if report is BandReport.NONE:
        return []
    bands = TABLES[report][metric]
    limits = monotone_limits(metric, bands)
    return [
        bands[i].name
        for i in range(1, len(bands))
        if limits[i] is not None and limits[i] == limits[i - 1]
    ]


def place(report: BandReport, metric: Metric, value: float) -> Placement | None:
    """The band ``value`` falls in under ``report``; None when no bands are chosen."""
    if report is BandReport.NONE:
        return None
    bands = TABLES[report][metric]
    limits = monotone_limits(metric, bands)
    higher = metric in HIGHER_IS_BETTER
    chosen = bands[-1]
    for band, limit in zip(bands, limits, strict=True):
        if limit is None or (value >= limit if higher else value <= limit):
            chosen = band
            break
    note = f"DORA {report.value}: {chosen.name} ({chosen.published})"
    empty = unreachable(report, metric)
    caveat = ""
    if empty:
        caveat = (
            f"DORA {report.value} publishes the {' and '.join(empty)} band as no worse than the"
            " band above it; read in order, that band takes no values"
        )
    return Placement(chosen.name, chosen.published, note, caveat)
