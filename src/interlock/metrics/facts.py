"""The questions the metrics ask of their data, and the in-memory answers.

:class:`DeliveryFacts` is the narrow interface between the metrics and where
the events live. Each method is one aggregate a database answers with one
query, so a SQL-backed source can serve a million deployments without
building a million Python objects. The intended SQL for each (against
Interlock's own tables, for one scope: service, environment, team, window):

- ``deployment_counts``: one ``SELECT`` with ``COUNT(*) FILTER (WHERE ...)`` per
  field and ``COUNT(DISTINCT <local date of finished_at>)``; change failures
  join ``incidents`` on ``deployment_id``.
- ``lead_times``: ``deployed_at - committed_at`` per first-deployed commit,
  ``ORDER BY 1``; wrap the column in a :class:`~interlock.metrics.stats.Sample`
  that answers ``quantile`` with ``LIMIT 1 OFFSET k`` and ``mean`` with ``AVG``.
- ``restore_times``: ``resolved_at - opened_at`` from incidents, or a window
  function (``LEAD`` over deployments of a service and environment ordered by
  time) pairing a failed deployment with the next good one.
- ``pipeline_runs``: ``GROUP BY pipeline, environment``.
- ``approval_waits``: ``decided_at - requested_at`` of approval gates.
- ``step_counts``: ``COUNT(*) FILTER (WHERE manual)`` over step runs.
- ``releases_by_person``: ``GROUP BY created_by``.
- ``schedule_slips``: ``started_at - scheduled_at`` of scheduled releases.

:class:`EventFacts` answers the same questions from lists of the records in
:mod:`interlock.metrics.events`, in one pass each plus a sort.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol

from interlock.errors import InvalidInput
from interlock.metrics.definitions import RestoreFrom
from interlock.metrics.events import (
    ApprovalEvent,
    ChangeEvent,
    DeploymentEvent,
    IncidentEvent,
    Outcome,
    PipelineRunEvent,
    ReleaseEvent,
    StepEvent,
)
from interlock.metrics.stats import Sample, SortedSample, coefficient_of_variation


@dataclass(frozen=True)
class Window:
    """The period measured, ``since`` inclusive and ``until`` exclusive.

    ``zone`` is the calendar that "deployment days" are counted in. A
    ``derived`` window was taken from the data (the whole days from the first
    to the last deployment) and filters nothing out.
    """

    since: datetime
    until: datetime
    zone: tzinfo = UTC
    derived: bool = False

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise InvalidInput("a metrics window needs times with a time zone")
        if self.until <= self.since:
            raise InvalidInput(f"the window ends ({self.until}) before it starts ({self.since})")

    @classmethod
    def covering(cls, times: Iterable[datetime], zone: tzinfo = UTC) -> Window | None:
        """Whole days (in ``zone``) from the first to the last of ``times``; None if empty."""
        first: datetime | None = None
        last: datetime | None = None
        for at in times:
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
        if first is None or last is None:
            return None
        start = _midnight(first.astimezone(zone).date(), zone)
        end = _midnight(last.astimezone(zone).date() + timedelta(days=1), zone)
        return cls(start, end, zone, derived=True)

    def days(self) -> float:
        """The window's length in days (fractional for a partial day)."""
        return (self.until - self.since).total_seconds() / 86400

    def contains(self, at: datetime) -> bool:
        """True when ``at`` falls in the window (a derived window contains everything)."""
        return self.derived or self.since <= at < self.until

    def describe(self) -> str:
        """``2024-01-01 to 2024-03-31 (UTC, 91 days)``."""
        first = self.since.astimezone(self.zone).date()
        last = (self.until - timedelta(microseconds=1)).astimezone(self.zone).date()
        return f"{first} to {last} ({zone_name(self.zone)}, {self.days():g} days)"


def zone_name(zone: tzinfo) -> str:
    """``UTC``, ``Europe/Berlin``: the name a person would type."""
    return getattr(zone, "key", None) or str(zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


@dataclass(frozen=True)
class DeploymentCounts:
    """Counts over the deployments in the window.

    ``change_failures`` counts each failing deployment once; the three reasons
    after it may overlap (a rolled-back deployment an incident also names).
    """

    succeeded: int
    deployment_days: int
    attempted: int  # the deployments that reached the environment (see attempted())
    change_failures: int
    failed_outcome: int  # failed or rolled back
    flagged: int  # finished well but known to have caused a failure (a hotfix followed)
    incident_linked: int  # named by an incident
    rework: int


@dataclass(frozen=True)
class IncidentCounts:
    opened: int
    resolved: int
    linked: int  # name a deployment in the data
    unlinked: int  # name none, or one that is not in the data


@dataclass(frozen=True)
class Durations:
    """A sample of durations in seconds and what was left out or bent to make it."""

    sample: Sample
    skewed: int = 0  # ended before it started (clock skew): counted as 0 seconds
    open: int = 0  # started but never ended: unresolved, unrestored, pending; not in the sample


@dataclass(frozen=True)
class PipelineRuns:
    pipeline: str
    environment: str
    runs: int
    failed: int
    gap_variation: float | None  # coefficient of variation of the gaps between runs


@dataclass(frozen=True)
class StepCounts:
    manual: int
    automated: int


@dataclass(frozen=True)
class PersonCounts:
    """Releases per person who ran them; ``unknown`` had nobody recorded."""

    counts: dict[str, int] = field(default_factory=dict)
    unknown: int = 0


class DeliveryFacts(Protocol):
    """What the metrics need to know; one aggregate query each (see the module docstring)."""

    @property
    def window(self) -> Window | None: ...

    def deployment_counts(self) -> DeploymentCounts: ...

    def lead_times(self) -> Durations: ...

    def restore_times(self, start: RestoreFrom) -> Durations: ...

    def incident_counts(self) -> IncidentCounts: ...

    def pipeline_runs(self) -> list[PipelineRuns]: ...

    def approval_waits(self) -> Durations: ...

    def step_counts(self) -> StepCounts: ...

    def releases_by_person(self) -> PersonCounts: ...

    def schedule_slips(self) -> Durations: ...


def _seconds(start: datetime, end: datetime) -> tuple[float, bool]:
    """``end - start`` in seconds, and whether it was negative (then 0)."""
    seconds = (end - start).total_seconds()
    return (0.0, True) if seconds < 0 else (seconds, False)


class EventFacts:
    """:class:`DeliveryFacts` answered from in-memory event records.

    Without a ``window`` the whole days from the first to the last deployment
    (or release, when there are no deployments) are the period, and nothing is
    filtered out.
    """

    def __init__(
        self,
        *,
        deployments: Sequence[DeploymentEvent] = (),
        changes: Sequence[ChangeEvent] = (),
        incidents: Sequence[IncidentEvent] = (),
        pipeline_runs: Sequence[PipelineRunEvent] = (),
        approvals: Sequence[ApprovalEvent] = (),
        steps: Sequence[StepEvent] = (),
        releases: Sequence[ReleaseEvent] = (),
        window: Window | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self._window = window or (
            Window.covering((d.at for d in deployments), zone)
            or Window.covering((r.at for r in releases), zone)
        )
        self._all_deployments = sorted(deployments, key=lambda d: d.at)
        self._runs = sorted(pipeline_runs, key=lambda r: r.at)
        self._deployments = list(self._all_deployments)
        self._changes = list(changes)
        self._incidents = list(incidents)
        self._approvals = list(approvals)
        self._steps = list(steps)
        self._releases = list(releases)
        if self._window is not None and not self._window.derived:
            inside = self._window.contains
            self._deployments = [d for d in self._deployments if inside(d.at)]
            self._changes = [c for c in self._changes if inside(c.deployed_at)]
            self._incidents = [i for i in self._incidents if inside(i.opened_at)]
            self._runs = [r for r in self._runs if inside(r.at)]
            self._approvals = [a for a in self._approvals if inside(a.requested_at)]
            self._steps = [s for s in self._steps if inside(s.started_at)]
            self._releases = [r for r in self._releases if inside(r.at)]
        known = {d.id for d in deployments}
        # every incident may name a culprit, even one opened after the window closed
        self._blamed = {i.deployment_id for i in incidents if i.deployment_id in known}
        self._counts: DeploymentCounts | None = None

    @property
    def window(self) -> Window | None:
        return self._window

    def contains(self, at: datetime) -> bool:
        """True when ``at`` is inside the window (or there is no window to filter by)."""
        return self._window is None or self._window.contains(at)

    def deployment_counts(self) -> DeploymentCounts:
        if self._counts is None:  # asked by several metrics; the answer does not change
            self._counts = self._count_deployments()
        return self._counts

    def _count_deployments(self) -> DeploymentCounts:
        zone = self._window.zone if self._window else UTC
        blamed = self._blamed
        attempted = succeeded = failures = failed = flagged = linked = rework = 0
        days: set[date] = set()
        for d in self._deployments:  # one pass: this runs over every deployment
            outcome = d.outcome
            if not d.attempted():
                continue
            attempted += 1
            if outcome is Outcome.SUCCEEDED:
                succeeded += 1
                days.add(d.at.astimezone(zone).date())
            else:
                failed += 1
            named = d.id in blamed
            linked += named
            flagged += d.caused_failure
            rework += d.rework
            failures += named or d.caused_failure or outcome is not Outcome.SUCCEEDED
        return DeploymentCounts(
            succeeded=succeeded,
            deployment_days=len(days),
            attempted=attempted,
            change_failures=failures,
            failed_outcome=failed,
            flagged=flagged,
            incident_linked=linked,
            rework=rework,
        )

    def lead_times(self) -> Durations:
        first: dict[tuple[str, str], ChangeEvent] = {}
        for change in self._changes:  # a commit counts once: at its first deployment
            key = (change.service, change.sha)
            if key not in first or change.deployed_at < first[key].deployed_at:
                first[key] = change
        values: list[float] = []
        skewed = 0
        for change in first.values():
            seconds, negative = _seconds(change.committed_at, change.deployed_at)
            values.append(seconds)
            skewed += negative
        return Durations(SortedSample(values), skewed=skewed)

    def restore_times(self, start: RestoreFrom) -> Durations:
        if start is RestoreFrom.INCIDENT:
            return self._incident_restores()
        return self._deployment_restores()

    def _incident_restores(self) -> Durations:
        values: list[float] = []
        skewed = unresolved = 0
        for incident in self._incidents:
            if incident.resolved_at is None:
                unresolved += 1
                continue
            seconds, negative = _seconds(incident.opened_at, incident.resolved_at)
            values.append(seconds)
            skewed += negative
        return Durations(SortedSample(values), skewed=skewed, open=unresolved)

    def _deployment_restores(self) -> Durations:
        """From a failing deployment to the next good one of the same service and environment.

        Further failures before that good deployment belong to the same episode.
        The next good deployment may lie after the window; the episode counts
        when it began inside.
        """
        began: dict[tuple[str, str], datetime] = {}  # open episode per service and environment
        values: list[float] = []
        blamed = self._blamed
        for d in self._all_deployments:  # in time order
            if not d.attempted():
                continue
            stream = (d.service, d.environment)
            failing = d.outcome is not Outcome.SUCCEEDED or d.caused_failure or d.id in blamed
            if failing:
                if stream not in began and self.contains(d.at):
                    began[stream] = d.at
            elif stream in began:
                values.append((d.at - began.pop(stream)).total_seconds())
        unrestored = len(began)
        return Durations(SortedSample(values), open=unrestored)

    def incident_counts(self) -> IncidentCounts:
        linked = sum(1 for i in self._incidents if i.deployment_id in self._blamed)
        return IncidentCounts(
            opened=len(self._incidents),
            resolved=sum(1 for i in self._incidents if i.resolved_at is not None),
            linked=linked,
            unlinked=len(self._incidents) - linked,
        )

    def pipeline_runs(self) -> list[PipelineRuns]:
        groups: dict[tuple[str, str], list[PipelineRunEvent]] = defaultdict(list)
        for run in self._runs:
            groups[(run.pipeline, run.environment)].append(run)
        result = []
        for (pipeline, environment), runs in sorted(groups.items()):
            gaps = [(b.at - a.at).total_seconds() for a, b in zip(runs, runs[1:], strict=False)]
            failed = sum(1 for r in runs if r.outcome is not Outcome.SUCCEEDED)
            cv = coefficient_of_variation(gaps)
            result.append(PipelineRuns(pipeline, environment, len(runs), failed, cv))
        return result

    def approval_waits(self) -> Durations:
        values: list[float] = []
        skewed = pending = 0
        for approval in self._approvals:
            if approval.decided_at is None:
                pending += 1
                continue
            seconds, negative = _seconds(approval.requested_at, approval.decided_at)
            values.append(seconds)
            skewed += negative
        return Durations(SortedSample(values), skewed=skewed, open=pending)

    def step_counts(self) -> StepCounts:
        manual = sum(1 for step in self._steps if step.manual)
        return StepCounts(manual=manual, automated=len(self._steps) - manual)

    def releases_by_person(self) -> PersonCounts:
        counts: dict[str, int] = defaultdict(int)
        unknown = 0
        for release in self._releases:
            person = (release.run_by or "").strip()
            if person:
                counts[person] += 1
            else:
                unknown += 1
        return PersonCounts(dict(counts), unknown)

    def schedule_slips(self) -> Durations:
        planned = [r for r in self._releases if r.planned_at is not None]
        values = [(r.at - r.planned_at).total_seconds() for r in planned if r.planned_at]
        return Durations(SortedSample(values))
