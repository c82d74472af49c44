"""The delivery metrics: the four DORA keys, rework rate and pipeline run frequency.

Each function asks :class:`~interlock.metrics.facts.DeliveryFacts` one or two
aggregate questions and returns a :class:`~interlock.metrics.results.MetricResult`
whose ``definition`` spells out what was counted and how.
"""

from __future__ import annotations

from interlock.metrics.bands import Metric, place
from interlock.metrics.definitions import (
    STATISTIC_WORDS,
    BandReport,
    Definitions,
    FrequencyCount,
    RestoreFrom,
)
from interlock.metrics.facts import DeliveryFacts
from interlock.metrics.results import Kind, MetricResult, not_enough
from interlock.metrics.stats import statistic_of

NO_BANDS = "the DORA reports publish no bands for this metric"


def band_for(
    metric: Metric, value: float | None, n: int, definitions: Definitions
) -> tuple[str | None, str, str]:
    """The band of ``value``, the note printed with it (or why there is no band), a caveat."""
    if value is None or n < definitions.min_events:
        return None, not_enough(n), ""
    if definitions.bands is BandReport.NONE:
        return None, "no bands chosen", ""
    placement = place(definitions.bands, metric, value)
    assert placement is not None
    return placement.band, placement.note, placement.caveat


def _with(definition: str, caveat: str) -> str:
    return f"{definition}; {caveat}" if caveat else definition


def deployment_frequency(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Successful deployments (or days with one) per day, week or month over the window."""
    counts = facts.deployment_counts()
    window = facts.window
    unit = definitions.frequency_unit
    by_days = definitions.frequency_count is FrequencyCount.DAYS
    count = counts.deployment_days if by_days else counts.succeeded
    what = "days with at least one successful deployment" if by_days else "successful deployments"
    period = window.describe() if window else "no period: no deployments"
    definition = f"{what} per {unit.value} ({unit.days()} days), over {period}"
    if window is None or (window.derived and counts.deployment_days < 2):
        value = None
        definition += "; a period needs deployments on at least two days"
    else:
        value = count / window.days() * unit.days()
    band, note, caveat = band_for(
        Metric.DEPLOYMENT_FREQUENCY,
        None if value is None else value / unit.days(),
        count,
        definitions,
    )
    return MetricResult(
        key="deployment_frequency",
        title="Deployment frequency",
        value=value,
        kind=Kind.RATE,
        unit=unit.value,
        n=count,
        definition=_with(definition, caveat),
        band=band,
        band_note=note,
        details={
            "deployments": counts.succeeded,
            "deployment_days": counts.deployment_days,
            "days_in_period": window.days() if window else None,
        },
    )


def lead_time(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Commit to running in production, per commit, summarised by the chosen statistic."""
    durations = facts.lead_times()
    value = statistic_of(durations.sample, definitions.statistic)
    n = len(durations.sample)
    definition = (
        f"{STATISTIC_WORDS[definitions.statistic]} time from a commit to its first successful"
        " deployment, per commit"
    )
    if durations.skewed:
        definition += (
            f"; {durations.skewed} commit(s) dated after their deployment (clock skew) count as 0"
        )
    band, note, caveat = band_for(Metric.LEAD_TIME, value, n, definitions)
    return MetricResult(
        key="lead_time",
        title="Lead time for changes",
        value=value,
        kind=Kind.DURATION,
        n=n,
        definition=_with(definition, caveat),
        band=band,
        band_note=note,
        details={"commits": n, "clock_skew": durations.skewed},
    )


def change_failure_rate(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Share of deployments that failed or caused a failure in production."""
    counts = facts.deployment_counts()
    incidents = facts.incident_counts()
    n = counts.attempted
    value = counts.change_failures / n if n else None
    definition = (
        "deployments that failed, were rolled back or caused a failure (an incident names"
        " them, or a hotfix followed) / all deployments that reached the environment (not"
        " cancelled, not stopped before their first step, as by a rejected approval)"
    )
    if incidents.unlinked:
        definition += (
            f"; {incidents.unlinked} incident(s) name no deployment and are not counted here"
        )
    band, note, caveat = band_for(Metric.CHANGE_FAILURE_RATE, value, n, definitions)
    return MetricResult(
        key="change_failure_rate",
        title="Change failure rate",
        value=value,
        kind=Kind.RATIO,
        n=n,
        definition=_with(definition, caveat),
        band=band,
        band_note=note,
        details={
            "deployments": n,
            "change_failures": counts.change_failures,
            "failed_or_rolled_back": counts.failed_outcome,
            "followed_by_hotfix": counts.flagged,
            "named_by_incident": counts.incident_linked,
            "incidents_without_deployment": incidents.unlinked,
        },
    )


def time_to_restore(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Time to restore service, from incidents or from failed deployments, as chosen."""
    start = definitions.restore_from
    durations = facts.restore_times(start)
    value = statistic_of(durations.sample, definitions.statistic)
    n = len(durations.sample)
    stat = STATISTIC_WORDS[definitions.statistic]
    if start is RestoreFrom.INCIDENT:
        definition = f"{stat} time from an incident being opened to it being resolved"
        if durations.open:
            definition += f"; {durations.open} unresolved incident(s) not counted"
    else:
        definition = (
            f"{stat} time from a failing deployment to the next good deployment of the same"
            " service in the same environment"
        )
        if durations.open:
            definition += f"; {durations.open} failure(s) not yet followed by a good deployment"
    if durations.skewed:
        definition += f"; {durations.skewed} resolved before opened (clock skew) count as 0"
    band, note, caveat = band_for(Metric.TIME_TO_RESTORE, value, n, definitions)
    return MetricResult(
        key="time_to_restore",
        title="Time to restore service",
        value=value,
        kind=Kind.DURATION,
        n=n,
        definition=_with(definition, caveat),
        band=band,
        band_note=note,
        details={"restored": n, "not_restored": durations.open, "clock_skew": durations.skewed},
    )


def rework_rate(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Share of deployments that were unplanned, made because of a failure."""
    counts = facts.deployment_counts()
    n = counts.attempted
    value = counts.rework / n if n else None
    return MetricResult(
        key="rework_rate",
        title="Deployment rework rate",
        value=value,
        kind=Kind.RATIO,
        n=n,
        definition=(
            "unplanned deployments made because of a failure (hotfix, fix-forward)"
            " / all deployments that reached the environment (not cancelled, not stopped"
            " before their first step)"
        ),
        band_note=not_enough(n) if n < definitions.min_events else NO_BANDS,
        details={"deployments": n, "rework": counts.rework},
    )


def pipeline_run_frequency(facts: DeliveryFacts, definitions: Definitions) -> MetricResult:
    """Pipeline runs of every outcome per unit, in total and per pipeline and environment."""
    runs = facts.pipeline_runs()
    window = facts.window
    unit = definitions.frequency_unit
    total = sum(r.runs for r in runs)
    scale = unit.days() / window.days() if window else None
    rows = [
        {
            "pipeline": r.pipeline,
            "environment": r.environment,
            "runs": r.runs,
            "failed": r.failed,
            "per_unit": r.runs * scale if scale is not None else None,
            "gap_variation": r.gap_variation,
        }
        for r in runs
    ]
    period = window.describe() if window else "no period"
    return MetricResult(
        key="pipeline_run_frequency",
        title="Pipeline run frequency",
        value=total * scale if scale is not None and total else None,
        kind=Kind.RATE,
        unit=unit.value,
        n=total,
        definition=(
            f"pipeline runs of any outcome, failed ones included, per {unit.value} over"
            f" {period}; gap variation is the coefficient of variation of the time between"
            " runs (0 regular, 1 or more irregular)"
        ),
        band_note=not_enough(total) if total < definitions.min_events else NO_BANDS,
        details={"pipelines": rows},
    )


def delivery_metrics(facts: DeliveryFacts, definitions: Definitions) -> list[MetricResult]:
    """The four keys, rework rate and pipeline run frequency, in that order."""
    return [
        deployment_frequency(facts, definitions),
        lead_time(facts, definitions),
        change_failure_rate(facts, definitions),
        time_to_restore(facts, definitions),
        rework_rate(facts, definitions),
        pipeline_run_frequency(facts, definitions),
    ]
