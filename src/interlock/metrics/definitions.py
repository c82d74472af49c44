"""The choices behind every number, as settings printed with the number.

Two teams can compute "deployment frequency" and get different figures because
one counts deployments and the other counts days with a deployment. Here each
such choice is a field of :class:`Definitions`, and every result carries the
words that describe the choice made.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from interlock.errors import InvalidInput

_E = TypeVar("_E", bound=StrEnum)


class Statistic(StrEnum):
    """How a set of durations becomes one number."""

    MEDIAN = "median"
    MEAN = "mean"
    P90 = "p90"


class FrequencyUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def days(self) -> int:
        """The unit's length in days; a month is counted as 30 days."""
        return {"day": 1, "week": 7, "month": 30}[self.value]


class FrequencyCount(StrEnum):
    """What deployment frequency counts."""

    DEPLOYMENTS = "deployments"  # every successful deployment
    DAYS = "days"  # calendar days with at least one successful deployment


class RestoreFrom(StrEnum):
    """Where time to restore starts and ends."""

    INCIDENT = "incident"  # incident opened -> incident resolved
    DEPLOYMENT = "deployment"  # failed deployment -> next good deployment of that service


class BandReport(StrEnum):
    """Which DORA State of DevOps report's performance bands classify the results."""

    DORA_2021 = "2021"
    DORA_2023 = "2023"
    DORA_2024 = "2024"
    NONE = "none"


STATISTIC_WORDS = {
    Statistic.MEDIAN: "median",
    Statistic.MEAN: "mean",
    Statistic.P90: "90th percentile",
}


@dataclass(frozen=True)
class Definitions:
    """The settings every metric is computed under; see ``docs/metrics.md``."""

    statistic: Statistic = Statistic.MEDIAN
    frequency_unit: FrequencyUnit = FrequencyUnit.WEEK
    frequency_count: FrequencyCount = FrequencyCount.DEPLOYMENTS
    restore_from: RestoreFrom = RestoreFrom.INCIDENT
    bands: BandReport = BandReport.DORA_2024
    min_events: int = 5  # fewer events than this give "not enough data" instead of a band

    def __post_init__(self) -> None:
        if self.min_events < 1:
            raise InvalidInput(f"min_events must be at least 1, not {self.min_events}")

    @classmethod
    def parse(
        cls,
        *,
        statistic: str = "median",
        frequency_unit: str = "week",
        frequency_count: str = "deployments",
        restore_from: str = "incident",
        bands: str = "2024",
        min_events: int = 5,
    ) -> Definitions:
        """Definitions from the words a user typed; an unknown word raises :class:`InvalidInput`."""
        return cls(
            statistic=_choice(Statistic, statistic, "statistic"),
            frequency_unit=_choice(FrequencyUnit, frequency_unit, "frequency unit"),
            frequency_count=_choice(FrequencyCount, frequency_count, "frequency count"),
            restore_from=_choice(RestoreFrom, restore_from, "time to restore from"),
            bands=_choice(BandReport, bands, "bands"),
            min_events=min_events,
        )

    def describe(self) -> dict[str, str]:
        """The settings as words, for the head of a report."""
        return {
            "statistic": STATISTIC_WORDS[self.statistic],
            "frequency": f"{_count_words(self.frequency_count)} per {self.frequency_unit.value}",
            "time_to_restore": (
                "incident opened -> resolved"
                if self.restore_from is RestoreFrom.INCIDENT
                else "failed deployment -> next good deployment of the same service"
            ),
            "bands": (
                "none" if self.bands is BandReport.NONE else f"DORA {self.bands.value} report"
            ),
            "min_events": f"a band needs at least {self.min_events} events",
        }


def _count_words(count: FrequencyCount) -> str:
    return "deployments" if count is FrequencyCount.DEPLOYMENTS else "days with a deployment"


def _choice(enum: type[_E], value: str, what: str) -> _E:
    try:
        return enum(value.strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(f"{what} {value!r} is not one of: {allowed}") from None
