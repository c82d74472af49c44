"""Coordination metrics: approval wait, manual steps, concentration, slip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from interlock.metrics import (
    ApprovalEvent,
    Definitions,
    EventFacts,
    ReleaseEvent,
    StepEvent,
    approval_wait,
    bus_factor,
    manual_step_share,
    rank_manual_steps,
    release_concentration,
    schedule_slip,
)
from interlock.metrics.definitions import Statistic

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_approval_wait_p50_and_p90() -> None:
    approvals = [
        ApprovalEvent(T0, T0 + minutes(10)),
        ApprovalEvent(T0, T0 + minutes(20)),
        ApprovalEvent(T0, T0 + minutes(30)),
        ApprovalEvent(T0, T0 + minutes(120)),
        ApprovalEvent(T0, None),  # still waiting
        ApprovalEvent(T0, T0 - minutes(5)),  # decided "before" asked: clock skew
    ]
    p50, p90 = approval_wait(EventFacts(approvals=approvals), Definitions())
    # [0, 600, 1200, 1800, 7200]
    assert p50.value == 1200
    assert p90.value == pytest.approx(1800 + 0.6 * (7200 - 1800))
    assert p50.n == 5
    assert "1 still waiting, not counted" in p50.definition
    assert "1 decided before asked (clock skew) count as 0" in p90.definition
    assert p50.band_note == "no bands: compare with your own earlier figures"


def test_manual_step_share_and_which_step_to_automate_first() -> None:
    steps = [
        StepEvent("db migration", True, T0, T0 + minutes(30)),
        StepEvent("db migration", True, T0, T0 + minutes(10)),
        StepEvent("smoke test", True, T0, T0 + minutes(60)),
        *[StepEvent("build", False, T0, T0 + minutes(1)) for _ in range(7)],
    ]
    share = manual_step_share(EventFacts(steps=steps), Definitions())
    assert share.value == pytest.approx(0.3)
    assert share.display() == "30.0%"
    ranked = rank_manual_steps(steps)
    # smoke test: 1 x 60m = 3600s; db migration: 30m + 10m = 2400s
    assert [r.name for r in ranked] == ["smoke test", "db migration"]
    assert ranked[1].runs == 2
    assert ranked[1].median_signoff == 1200


def test_concentration_top_share_people_and_bus_factor() -> None:
    people = ["alice"] * 5 + ["bob"] * 2 + ["carol"] + [None, "  "]
    releases = [ReleaseEvent(str(i), T0, run_by=p) for i, p in enumerate(people)]
    result = release_concentration(EventFacts(releases=releases), Definitions())
    assert result.value == pytest.approx(5 / 8)
    assert result.n == 8
    assert result.details["top_person"] == "alice"
    assert result.details["distinct_people"] == 3
    assert result.details["bus_factor"] == 1
    assert result.details["unknown"] == 2
    assert "2 release(s) with nobody recorded are left out" in result.definition


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({}, 0),
        ({"a": 3, "b": 3, "c": 2}, 2),  # a alone 3 of 8 < half; a and b 6 of 8
        ({"a": 1, "b": 1, "c": 1, "d": 1}, 2),
        ({"a": 4, "b": 4}, 1),  # exactly half is enough
    ],
)
def test_bus_factor(counts: dict[str, int], expected: int) -> None:
    assert bus_factor(counts) == expected


def test_schedule_slip() -> None:
    slips = [timedelta(days=1), timedelta(0), -timedelta(hours=2), timedelta(days=3), minutes(30)]
    releases = [ReleaseEvent(str(i), T0 + slip, planned_at=T0) for i, slip in enumerate(slips)] + [
        ReleaseEvent("unplanned", T0)
    ]
    facts = EventFacts(releases=releases)
    median = schedule_slip(facts, Definitions())
    # [-7200, 0, 1800, 86400, 259200]
    assert median.value == 1800
    assert median.n == 5
    assert median.details["late"] == 3
    assert median.details["late_share"] == pytest.approx(0.6)
    mean = schedule_slip(facts, Definitions(statistic=Statistic.MEAN))
    assert mean.value == pytest.approx(68040)
    early = schedule_slip(EventFacts(releases=releases[2:3]), Definitions())
    assert early.display() == "-2h"
