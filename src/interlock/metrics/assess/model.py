"""What an assessment found, as plain records the HTML, the JSON and the terminal all read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from interlock.metrics.assess.inputs import RowProblem
from interlock.metrics.assess.words import human_value
from interlock.metrics.results import MetricResult


@dataclass(frozen=True)
class Sign:
    """A warning sign of manual coordination, as evidence with its numbers.

    ``observed`` is True when the data shows it, False when the data was
    enough and does not, None when the inputs cannot tell.
    """

    key: str
    title: str
    observed: bool | None
    evidence: str
    threshold: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One thing to do first, and the evidence it rests on."""

    title: str
    why: str


@dataclass(frozen=True)
class ServiceSummary:
    service: str
    releases: int
    first: str
    last: str
    change_failures: int
    hotfixes: int
    released_alone: int  # release days on which no other service was released
    often_with: list[str]


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    labels: list[str]
    values: list[float]
    note: str = ""


@dataclass(frozen=True)
class Assessment:
    generated_at: datetime
    zone: str
    inputs: dict[str, Any]
    assumptions: list[str]
    definitions: dict[str, str]
    period: str | None
    metrics: list[MetricResult]
    not_measured: list[dict[str, str]]
    signs: list[Sign]
    steps: list[Step]
    services: list[ServiceSummary]
    charts: list[Chart]
    problems: list[RowProblem]
    notices: list[str] = field(default_factory=list)  # warnings that are not about one row
    links: list[str] = field(default_factory=list)  # each incident linked, and how

    def warnings(self) -> list[str]:
        """Everything a reader should see first: notices, then rows that could not be read."""
        return [*self.notices, *(str(p) for p in self.problems)]

    def observed(self) -> list[Sign]:
        """The warning signs the data shows."""
        return [sign for sign in self.signs if sign.observed]

    def metric(self, key: str) -> MetricResult | None:
        """The metric with ``key``, if it was measured."""
        return next((m for m in self.metrics if m.key == key), None)

    def sign(self, key: str) -> Sign:
        """The warning sign with ``key``."""
        return next(s for s in self.signs if s.key == key)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "time_zone": self.zone,
            "inputs": self.inputs,
            "assumptions": self.assumptions,
            "definitions": self.definitions,
            "period": self.period,
            "metrics": [{**m.as_dict(), "display": human_value(m)} for m in self.metrics],
            "not_measured": self.not_measured,
            "signs": [asdict(s) for s in self.signs],
            "steps": [asdict(s) for s in self.steps],
            "services": [asdict(s) for s in self.services],
            "charts": [asdict(c) for c in self.charts],
            "problems": [{**asdict(p), "text": str(p)} for p in self.problems],
            "notices": self.notices,
            "incident_links": self.links,
        }
