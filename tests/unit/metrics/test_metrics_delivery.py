"""The delivery metrics over a fortnight of deployments worked out by hand.

The fortnight (2024-01-01 to 2024-01-14, UTC, 14 days) of one service:

    d1  01-01 10:00 succeeded
    d2  01-01 15:00 succeeded
    d3  01-03 09:00 failed
    d4  01-03 11:00 succeeded          restores d3 after 2h
    d5  01-08 10:00 succeeded          incident i1 names it: a change failure
    d6  01-09 10:00 rolled back
    d7  01-09 12:00 failed
    d8  01-10 10:00 succeeded, rework  restores the d5 episode after 48h
    d9  01-12 10:00 cancelled          ignored
    d10 01-14 10:00 succeeded

Successful: 6 on 5 days. Attempted: 9. Change failures: d3 d5 d6 d7 = 4.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.metrics import (
    ChangeEvent,
    Definitions,
    DeploymentEvent,
    EventFacts,
    IncidentEvent,
    Outcome,
    PipelineRunEvent,
    Window,
    change_failure_rate,
    deployment_frequency,
    lead_time,
    pipeline_run_frequency,
    rework_rate,
    time_to_restore,
)
from interlock.metrics.definitions import BandReport, FrequencyCount, FrequencyUnit, RestoreFrom
from interlock.metrics.definitions import Statistic as S


def at(day: int, hour: int, minute: int = 0, month: int = 1, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


WINDOW = Window(at(1, 0), at(15, 0))

DEPLOYMENTS = [
    DeploymentEvent("d1", "api", at(1, 10)),
    DeploymentEvent("d2", "api", at(1, 15)),
    DeploymentEvent("d3", "api", at(3, 9), Outcome.FAILED),
    DeploymentEvent("d4", "api", at(3, 11)),
    DeploymentEvent("d5", "api", at(8, 10)),
    DeploymentEvent("d6", "api", at(9, 10), Outcome.ROLLED_BACK),
    DeploymentEvent("d7", "api", at(9, 12), Outcome.FAILED),
    DeploymentEvent("d8", "api", at(10, 10), rework=True),
    DeploymentEvent("d9", "api", at(12, 10), Outcome.CANCELLED),
    DeploymentEvent("d10", "api", at(14, 10)),
]

INCIDENTS = [
    IncidentEvent("i1", at(8, 12), at(8, 14, 30), "api", deployment_id="d5"),  # 2h30m
    IncidentEvent("i2", at(11, 9), at(11, 9, 45), "api"),  # 45m, names no deployment
    IncidentEvent("i3", at(13, 8), None, "api"),  # unresolved
    IncidentEvent("i4", at(5, 10), at(5, 9), "api"),  # resolved before opened: skew -> 0
]

CHANGES = [
    ChangeEvent("api", "a", at(1, 8), at(1, 10)),  # 2h
    ChangeEvent("api", "b", at(31, 10, month=12, year=2023), at(1, 15)),  # 29h
    ChangeEvent("api", "b", at(31, 10, month=12, year=2023), at(3, 11)),  # later: ignored
    ChangeEvent("api", "c", at(8, 11), at(8, 10)),  # committed after deploying: 0
    ChangeEvent("api", "d", at(2, 10), at(10, 10)),  # 8 days
    ChangeEvent("api", "e", at(20, 10), at(1, 10, month=2)),  # outside the window
]

FACTS = EventFacts(deployments=DEPLOYMENTS, incidents=INCIDENTS, changes=CHANGES, window=WINDOW)


def test_deployment_frequency_counts_deployments_or_days() -> None:
    per_week = deployment_frequency(FACTS, Definitions())
    assert per_week.value == pytest.approx(3.0)  # 6 deployments / 14 days * 7
    assert per_week.n == 6
    assert per_week.display() == "3.00 per week"
    assert per_week.band == "high"  # 6/14 = 0.43 a day: under 5/7, over 1/7
    assert "successful deployments per week (7 days)" in per_week.definition
    assert "2024-01-01 to 2024-01-14 (UTC, 14 days)" in per_week.definition

    days = deployment_frequency(FACTS, Definitions(frequency_count=FrequencyCount.DAYS))
    assert days.value == pytest.approx(2.5)  # 5 days / 14 * 7
    assert days.n == 5
    assert "days with at least one successful deployment" in days.definition

    per_month = deployment_frequency(FACTS, Definitions(frequency_unit=FrequencyUnit.MONTH))
    assert per_month.value == pytest.approx(6 / 14 * 30)
    assert per_month.unit == "month"


def test_change_failure_rate_and_its_breakdown() -> None:
    result = change_failure_rate(FACTS, Definitions())
    assert result.value == pytest.approx(4 / 9)
    assert result.display() == "44.4%"
    assert result.band == "low"  # over 20% under the 2024 bands, read monotone
    assert result.details["failed_or_rolled_back"] == 3
    assert result.details["named_by_incident"] == 1
    assert result.details["incidents_without_deployment"] == 3
    assert "3 incident(s) name no deployment" in result.definition


def test_rework_rate_has_no_band() -> None:
    result = rework_rate(FACTS, Definitions())
    assert result.value == pytest.approx(1 / 9)
    assert result.band is None
    assert "no bands" in result.band_note


def test_time_to_restore_from_incidents() -> None:
    definitions = Definitions(min_events=3)
    median = time_to_restore(FACTS, definitions)
    assert median.value == 2700  # [0, 45m, 2h30m]
    assert median.n == 3
    assert median.display() == "45m"
    assert median.band == "elite"
    assert "1 unresolved incident(s) not counted" in median.definition
    assert "1 resolved before opened (clock skew) count as 0" in median.definition
    mean = time_to_restore(FACTS, Definitions(min_events=3, statistic=S.MEAN))
    assert mean.value == pytest.approx(3900)  # (0 + 2700 + 9000) / 3
    assert mean.band == "high"
    p90 = time_to_restore(FACTS, Definitions(min_events=3, statistic=S.P90))
    assert p90.value == pytest.approx(7740)  # 2700 + 0.8 * (9000 - 2700)
    assert p90.definition.startswith("90th percentile")


def test_time_to_restore_from_failed_deployments() -> None:
    definitions = Definitions(restore_from=RestoreFrom.DEPLOYMENT)
    result = time_to_restore(FACTS, definitions)
    # d3 -> d4: 2h; d5 (named by i1) -> d6, d7 still failing -> d8: 48h
    assert result.value == pytest.approx((7200 + 172800) / 2)
    assert result.n == 2
    assert result.band_note == "not enough data (n=2)"
    assert result.band is None
    p90 = time_to_restore(FACTS, Definitions(restore_from=RestoreFrom.DEPLOYMENT, statistic=S.P90))
    assert p90.value == pytest.approx(7200 + 0.9 * (172800 - 7200))


def test_a_failure_never_followed_by_a_good_deployment_stays_open() -> None:
    facts = EventFacts(
        deployments=[
            DeploymentEvent("x1", "api", at(1, 10)),
            DeploymentEvent("x2", "api", at(2, 10), Outcome.FAILED),
            DeploymentEvent("y1", "web", at(2, 11)),  # another service restores nothing
        ]
    )
    result = time_to_restore(facts, Definitions(restore_from=RestoreFrom.DEPLOYMENT))
    assert result.value is None
    assert result.details["not_restored"] == 1
    assert "1 failure(s) not yet followed by a good deployment" in result.definition


def test_lead_time_per_commit_with_clock_skew() -> None:
    definitions = Definitions(min_events=4)
    median = lead_time(FACTS, definitions)
    # [0 (skew), 2h, 29h, 8d]; b counts once, at its first deployment; e is outside
    assert median.value == pytest.approx((7200 + 104400) / 2)
    assert median.display() == "15h30m"
    assert median.n == 4
    assert median.details["clock_skew"] == 1
    assert "1 commit(s) dated after their deployment (clock skew) count as 0" in median.definition
    assert median.band == "elite"  # under a day (2024)
    assert lead_time(FACTS, Definitions(min_events=4, bands=BandReport.DORA_2021)).band == "high"
    mean = lead_time(FACTS, Definitions(statistic=S.MEAN))
    assert mean.value == pytest.approx((0 + 7200 + 104400 + 691200) / 4)
    p90 = lead_time(FACTS, Definitions(statistic=S.P90, min_events=4))
    assert p90.value == pytest.approx(104400 + 0.7 * (691200 - 104400))
    assert p90.band == "high"  # about six days


def test_no_incidents_gives_no_restore_time_and_no_band() -> None:
    facts = EventFacts(deployments=DEPLOYMENTS, window=WINDOW)
    result = time_to_restore(facts, Definitions())
    assert result.value is None
    assert result.display() == "no data"
    assert result.band_note == "not enough data (n=0)"
    assert change_failure_rate(facts, Definitions()).value == pytest.approx(3 / 9)


def test_incidents_with_no_deployment_count_for_restore_but_not_failures() -> None:
    facts = EventFacts(deployments=DEPLOYMENTS[:2], incidents=INCIDENTS[1:2])
    assert change_failure_rate(facts, Definitions()).value == 0.0
    assert time_to_restore(facts, Definitions()).value == 2700


def test_one_deployment_is_not_enough() -> None:
    facts = EventFacts(deployments=[DeploymentEvent("only", "api", at(3, 12))])
    frequency = deployment_frequency(facts, Definitions())
    assert frequency.value is None  # a period needs deployments on two days
    assert frequency.band_note == "not enough data (n=1)"
    failure = change_failure_rate(facts, Definitions())
    assert failure.value == 0.0
    assert failure.band is None and failure.band_note == "not enough data (n=1)"


def test_no_data_at_all() -> None:
    facts = EventFacts()
    assert facts.window is None
    for metric in (deployment_frequency, lead_time, change_failure_rate, time_to_restore):
        result = metric(facts, Definitions())
        assert result.value is None
        assert result.band_note == "not enough data (n=0)"


def test_derived_window_is_whole_days_and_filters_nothing() -> None:
    facts = EventFacts(deployments=DEPLOYMENTS, incidents=INCIDENTS)
    assert facts.window is not None
    assert facts.window.derived
    assert facts.window.days() == 14  # 01-01 00:00 to 01-15 00:00
    assert deployment_frequency(facts, Definitions()).value == pytest.approx(3.0)


def test_pipeline_run_frequency_counts_every_run() -> None:
    runs = [
        PipelineRunEvent("build", "staging", at(1, 9)),
        PipelineRunEvent("build", "staging", at(2, 9), Outcome.FAILED),
        PipelineRunEvent("build", "staging", at(3, 9)),
        PipelineRunEvent("build", "staging", at(4, 9)),
        PipelineRunEvent("deploy", "production", at(1, 9)),
        PipelineRunEvent("deploy", "production", at(2, 9)),
        PipelineRunEvent("deploy", "production", at(11, 9)),
    ]
    result = pipeline_run_frequency(EventFacts(pipeline_runs=runs, window=WINDOW), Definitions())
    assert result.value == pytest.approx(3.5)  # 7 runs / 14 days * 7
    rows = {row["pipeline"]: row for row in result.details["pipelines"]}
    assert rows["build"]["runs"] == 4 and rows["build"]["failed"] == 1
    assert rows["build"]["per_unit"] == pytest.approx(2.0)
    assert rows["build"]["gap_variation"] == 0.0  # a run every day
    assert rows["deploy"]["gap_variation"] == pytest.approx(0.8)  # gaps 1 and 9 days


def test_window_needs_an_order_and_a_zone() -> None:
    from interlock.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Window(at(2, 0), at(1, 0))
    with pytest.raises(InvalidInput):
        Window(datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert Window(at(1, 0), at(1, 0) + timedelta(hours=12)).days() == 0.5


def test_a_deployment_that_never_reached_the_environment_counts_nowhere() -> None:
    """Rejected at its approval on 01-13 (before its first step): d1-d10 alone count."""
    rejected = DeploymentEvent("r1", "api", at(13, 10), Outcome.NOT_REACHED, rework=True)
    facts = EventFacts(deployments=[*DEPLOYMENTS, rejected], window=WINDOW)
    assert change_failure_rate(facts, Definitions()).value == pytest.approx(3 / 9)
    assert change_failure_rate(facts, Definitions()).details["deployments"] == 9
    assert rework_rate(facts, Definitions()).details == {"deployments": 9, "rework": 1}
    # it opens no failure episode: d10 restores nothing
    restore = time_to_restore(facts, Definitions(restore_from=RestoreFrom.DEPLOYMENT))
    without = time_to_restore(
        EventFacts(deployments=DEPLOYMENTS, window=WINDOW),
        Definitions(restore_from=RestoreFrom.DEPLOYMENT),
    )
    assert (restore.value, restore.n) == (without.value, without.n)
