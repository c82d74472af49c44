"""One computed metric: its number, how many events it rests on, and what it means."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from interlock.domain.durations import format_duration


class Kind(StrEnum):
    """How a value reads: seconds, a share of a whole, a rate, a plain count."""

    DURATION = "duration"  # seconds; may be negative (early)
    RATIO = "ratio"  # 0..1
    RATE = "rate"  # events per ``unit``
    COUNT = "count"


@dataclass(frozen=True)
class MetricResult:
    """A number with its definition; ``band_note`` says the band or why there is none."""

    key: str
    title: str
    value: float | None
    kind: Kind
    n: int  # the events the value rests on
    definition: str  # the definition in words, with the settings used
    unit: str = ""  # for rates: "week", "day", "month"
    band: str | None = None
    band_note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def display(self) -> str:
        """The value as a person reads it: ``1d2h``, ``12.5%``, ``3.5 per week``."""
        return format_value(self.value, self.kind, self.unit)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["display"] = self.display()
        return data


def format_value(value: float | None, kind: Kind, unit: str = "") -> str:
    """``value`` in words fit for a table cell; ``no data`` when there is none."""
    if value is None:
        return "no data"
    if kind is Kind.DURATION:
        text = format_duration(abs(value)) if value else "0s"
        return f"-{text}" if value < 0 else text
    if kind is Kind.RATIO:
        return f"{value * 100:.1f}%"
    if kind is Kind.RATE:
        return f"{value:.2f} per {unit}" if unit else f"{value:.2f}"
    return f"{value:g}"


def not_enough(n: int) -> str:
    """The words printed instead of a band when too few events were seen."""
    return f"not enough data (n={n})"
