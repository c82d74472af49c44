"""Statistics, definitions and DORA bands, against numbers worked out by hand."""

from __future__ import annotations

import itertools

import pytest

from interlock.errors import InvalidInput
from interlock.metrics import BandReport, Definitions, Metric, SortedSample, Statistic, place
from interlock.metrics.bands import DAY, HOUR, TABLES, WEEK, unreachable
from interlock.metrics.stats import coefficient_of_variation, statistic_of


def test_median_mean_and_p90_interpolate_between_ranks() -> None:
    sample = SortedSample([4, 1, 3, 2])  # sorted: 1 2 3 4
    assert statistic_of(sample, Statistic.MEDIAN) == 2.5  # mean of the two middle values
    assert statistic_of(sample, Statistic.MEAN) == 2.5
    # rank (4 - 1) * 0.9 = 2.7 -> 3 + 0.7 * (4 - 3)
    assert statistic_of(sample, Statistic.P90) == pytest.approx(3.7)
    assert sample.count_over(2) == 2
    assert sample.count_over(0) == 4


def test_one_value_and_no_value() -> None:
    assert statistic_of(SortedSample([10.0]), Statistic.P90) == 10.0
    assert statistic_of(SortedSample([]), Statistic.MEDIAN) is None


def test_coefficient_of_variation() -> None:
    assert coefficient_of_variation([7, 7, 7]) == 0.0
    assert coefficient_of_variation([1, 3]) == pytest.approx(0.5)  # mean 2, deviation 1
    assert coefficient_of_variation([5]) is None


def test_definitions_from_words_and_their_description() -> None:
    definitions = Definitions.parse(statistic="P90", frequency_count="days", bands="2021")
    assert definitions.statistic is Statistic.P90
    described = definitions.describe()
    assert described["statistic"] == "90th percentile"
    assert described["frequency"] == "days with a deployment per week"
    assert described["bands"] == "DORA 2021 report"


def test_unknown_definition_word_says_what_is_allowed() -> None:
    with pytest.raises(InvalidInput, match="statistic 'average' is not one of: median, mean, p90"):
        Definitions.parse(statistic="average")
    with pytest.raises(InvalidInput, match="min_events"):
        Definitions(min_events=0)


@pytest.mark.parametrize(
    ("report", "metric", "value", "band"),
    [
        # 2024 change failure rate is published out of order: high 20%, medium 10%
        (BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.05, "elite"),
        (BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.08, "high"),
        (BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.15, "high"),
        (BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.20, "high"),
        (BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.21, "low"),
        (BandReport.DORA_2023, Metric.CHANGE_FAILURE_RATE, 0.10, "high"),
        (BandReport.DORA_2023, Metric.CHANGE_FAILURE_RATE, 0.12, "medium"),
        (BandReport.DORA_2023, Metric.CHANGE_FAILURE_RATE, 0.50, "low"),
        (BandReport.DORA_2021, Metric.CHANGE_FAILURE_RATE, 0.15, "elite"),
        (BandReport.DORA_2021, Metric.CHANGE_FAILURE_RATE, 0.25, "high"),
        # 2021 lead time has a gap between one hour and one day: it falls to high
        (BandReport.DORA_2021, Metric.LEAD_TIME, 30 * 60, "elite"),
        (BandReport.DORA_2021, Metric.LEAD_TIME, 2 * HOUR, "high"),
        (BandReport.DORA_2021, Metric.LEAD_TIME, 10 * DAY, "medium"),
        (BandReport.DORA_2021, Metric.LEAD_TIME, 200 * DAY, "low"),
        (BandReport.DORA_2024, Metric.LEAD_TIME, 15.5 * HOUR, "elite"),
        (BandReport.DORA_2024, Metric.LEAD_TIME, 6 * DAY, "high"),
        (BandReport.DORA_2024, Metric.LEAD_TIME, 20 * DAY, "medium"),
        (BandReport.DORA_2024, Metric.LEAD_TIME, 40 * DAY, "low"),
        # deployment frequency in deployments per day; higher is better
        (BandReport.DORA_2024, Metric.DEPLOYMENT_FREQUENCY, 1.0, "elite"),
        (BandReport.DORA_2024, Metric.DEPLOYMENT_FREQUENCY, 5 / 7, "elite"),
        (BandReport.DORA_2024, Metric.DEPLOYMENT_FREQUENCY, 3 / 7, "high"),
        (BandReport.DORA_2024, Metric.DEPLOYMENT_FREQUENCY, 0.1, "medium"),
        (BandReport.DORA_2024, Metric.DEPLOYMENT_FREQUENCY, 1 / 60, "low"),
        (BandReport.DORA_2021, Metric.DEPLOYMENT_FREQUENCY, 3 / 7, "high"),
        (BandReport.DORA_2021, Metric.DEPLOYMENT_FREQUENCY, 1 / 60, "medium"),
        (BandReport.DORA_2021, Metric.DEPLOYMENT_FREQUENCY, 1 / 365, "low"),
        # 2024 restore: medium equals high (< 1 day); one to seven days is a gap -> low
        (BandReport.DORA_2024, Metric.TIME_TO_RESTORE, 45 * 60, "elite"),
        (BandReport.DORA_2024, Metric.TIME_TO_RESTORE, 5 * HOUR, "high"),
        (BandReport.DORA_2024, Metric.TIME_TO_RESTORE, 2 * DAY, "low"),
        (BandReport.DORA_2023, Metric.TIME_TO_RESTORE, 2 * DAY, "medium"),
        (BandReport.DORA_2023, Metric.TIME_TO_RESTORE, 2 * WEEK, "low"),
    ],
)
def test_values_get_the_best_band_whose_limit_they_meet(
    report: BandReport, metric: Metric, value: float, band: str
) -> None:
    placement = place(report, metric, value)
    assert placement is not None
    assert placement.band == band
    assert placement.note.startswith(f"DORA {report.value}: {band} (")


def test_out_of_order_tables_are_read_monotone_and_say_so() -> None:
    assert unreachable(BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE) == ["medium"]
    assert unreachable(BandReport.DORA_2024, Metric.TIME_TO_RESTORE) == ["medium"]
    assert unreachable(BandReport.DORA_2023, Metric.CHANGE_FAILURE_RATE) == []
    placement = place(BandReport.DORA_2024, Metric.CHANGE_FAILURE_RATE, 0.08)
    assert placement is not None and "medium band as no worse" in placement.caveat
    assert place(BandReport.NONE, Metric.LEAD_TIME, 1.0) is None


@pytest.mark.parametrize(("report", "metric"), list(itertools.product(list(TABLES), list(Metric))))
def test_a_better_value_never_gets_a_worse_band(report: BandReport, metric: Metric) -> None:
    order = ["elite", "high", "medium", "low"]
    if metric is Metric.DEPLOYMENT_FREQUENCY:
        values = [10.0 / 1.3**i for i in range(60)]  # from best to worst
    elif metric is Metric.CHANGE_FAILURE_RATE:
        values = [i / 100 for i in range(101)]
    else:
        values = [60.0 * 1.3**i for i in range(60)]
    ranks = []
    for value in values:
        placement = place(report, metric, value)
        assert placement is not None
        ranks.append(order.index(placement.band))
    assert ranks == sorted(ranks)
