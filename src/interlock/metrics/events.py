"""What the metrics are computed from: plain frozen records, one per thing that happened.

These are deliberately free of Interlock's own tables: the offline assessment
builds them from a spreadsheet and git, and Interlock's database can build them
(or answer the same questions with SQL, see :mod:`interlock.metrics.facts`).
Every datetime must be timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    # failed before its first deploy step (rejected at an approval, stopped by a window
    # or a check): like a cancelled one, it changed nothing in the environment
    NOT_REACHED = "not_reached"


@dataclass(frozen=True)
class DeploymentEvent:
    """One deployment of one service to the environment being measured (normally production).

    ``at`` is when it finished: from then on the change ran there (or failed).
    ``caused_failure`` marks a deployment known to have caused a failure although
    it finished well (it was followed by a hotfix, for instance); an incident
    naming its ``id`` does the same. ``rework`` marks an unplanned deployment
    made because of a failure (a hotfix, a fix-forward).
    """

    id: str
    service: str
    at: datetime
    outcome: Outcome = Outcome.SUCCEEDED
    environment: str = "production"
    version: str | None = None
    deployed_by: str | None = None
    approved_by: str | None = None
    caused_failure: bool = False
    rework: bool = False

    def change_failure(self) -> bool:
        """True when it failed, was rolled back or is known to have caused a failure."""
        return self.caused_failure or self.outcome in (Outcome.FAILED, Outcome.ROLLED_BACK)

    def attempted(self) -> bool:
        """True when it reached the environment: not cancelled, not stopped before its first step.

        The others never changed anything there, so they count nowhere.
        """
        return self.outcome not in (Outcome.CANCELLED, Outcome.NOT_REACHED)


@dataclass(frozen=True)
class ChangeEvent:
    """One commit and when it first ran in the measured environment."""

    service: str
    sha: str
    committed_at: datetime
    deployed_at: datetime


@dataclass(frozen=True)
class IncidentEvent:
    """A failure in production; ``deployment_id`` names the deployment that caused it, if known."""

    id: str
    opened_at: datetime
    resolved_at: datetime | None = None
    service: str | None = None
    environment: str = "production"
    deployment_id: str | None = None


@dataclass(frozen=True)
class PipelineRunEvent:
    """One run of a pipeline in one environment, whatever its outcome."""

    pipeline: str
    environment: str
    at: datetime
    outcome: Outcome = Outcome.SUCCEEDED


@dataclass(frozen=True)
class ApprovalEvent:
    """One approval gate: when a decision was asked for and when (if) it came."""

    requested_at: datetime
    decided_at: datetime | None = None
    approver: str | None = None
    approved: bool = True


@dataclass(frozen=True)
class StepEvent:
    """One run of a pipeline or runbook step; ``manual`` steps are signed off by a person.

    ``finished_at - started_at`` of a manual step is how long people took to sign it off.
    """

    name: str
    manual: bool
    started_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class ReleaseEvent:
    """One release as people ran it: who ran it and, when it was planned, for when."""

    id: str
    at: datetime
    run_by: str | None = None
    planned_at: datetime | None = None
