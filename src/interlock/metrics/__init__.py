"""Delivery metrics and the coordination metrics, computed under explicit definitions.

Feed it events (:mod:`interlock.metrics.events`) through :class:`EventFacts`,
or anything else that answers :class:`DeliveryFacts` (a SQL-backed source),
and read :class:`MetricResult` values, each with its definition and band.
"""

from __future__ import annotations

from interlock.metrics.bands import Metric, Placement, place
from interlock.metrics.coordination import (
    ManualStepRank,
    approval_wait,
    bus_factor,
    coordination_metrics,
    manual_step_share,
    rank_manual_steps,
    release_concentration,
    schedule_slip,
)
from interlock.metrics.definitions import (
    BandReport,
    Definitions,
    FrequencyCount,
    FrequencyUnit,
    RestoreFrom,
    Statistic,
)
from interlock.metrics.delivery import (
    change_failure_rate,
    delivery_metrics,
    deployment_frequency,
    lead_time,
    pipeline_run_frequency,
    rework_rate,
    time_to_restore,
)
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
from interlock.metrics.facts import (
    DeliveryFacts,
    DeploymentCounts,
    Durations,
    EventFacts,
    IncidentCounts,
    PersonCounts,
    PipelineRuns,
    StepCounts,
    Window,
)
from interlock.metrics.results import Kind, MetricResult
from interlock.metrics.stats import Sample, SortedSample, statistic_of

__all__ = [
    "ApprovalEvent",
    "BandReport",
    "ChangeEvent",
    "Definitions",
    "DeliveryFacts",
    "DeploymentCounts",
    "DeploymentEvent",
    "Durations",
    "EventFacts",
    "FrequencyCount",
    "FrequencyUnit",
    "IncidentCounts",
    "IncidentEvent",
    "Kind",
    "ManualStepRank",
    "Metric",
    "MetricResult",
    "Outcome",
    "PersonCounts",
    "PipelineRunEvent",
    "PipelineRuns",
    "Placement",
    "ReleaseEvent",
    "RestoreFrom",
    "Sample",
    "SortedSample",
    "Statistic",
    "StepCounts",
    "StepEvent",
    "Window",
    "approval_wait",
    "bus_factor",
    "change_failure_rate",
    "coordination_metrics",
    "delivery_metrics",
    "deployment_frequency",
    "lead_time",
    "manual_step_share",
    "pipeline_run_frequency",
    "place",
    "rank_manual_steps",
    "release_concentration",
    "rework_rate",
    "schedule_slip",
    "statistic_of",
    "time_to_restore",
]
