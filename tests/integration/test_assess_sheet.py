"""The assessment of the example spreadsheet in examples/assess, checked by hand.

examples/assess/releases.csv: 17 rows, row 15 ("next tuesday") cannot be read,
so 16 releases of payments (7), ledger (6) and search (3) from 2024-03-05 to
2024-04-11 (38 days). Release days: 5 Tuesdays and 4 Thursdays.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlock.errors import InvalidInput
from interlock.metrics.assess import Assessment, AssessOptions, assess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "assess"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def example() -> Assessment:
    return assess(
        AssessOptions(releases=EXAMPLES / "releases.csv", incidents=EXAMPLES / "incidents.csv"),
        now=NOW,
    )


def test_metrics_of_the_example(example: Assessment) -> None:
    frequency = example.metric("deployment_frequency")
    assert frequency is not None
    assert frequency.value == pytest.approx(16 / 38 * 7)
    assert frequency.band == "high"
    failures = example.metric("change_failure_rate")
    assert failures is not None
    # payments 1.4.0 (hotfix and INC-1), ledger 2.3.0 (INC-2), payments 1.8.0 (INC-3 names
    # no version: the latest payments deployment before it opened, 26h earlier)
    assert failures.value == 3 / 16
    assert failures.band_note == "DORA 2024: high (20%)"
    restore = example.metric("time_to_restore")
    assert restore is not None
    assert restore.value == (9000 + 91800) / 2  # INC-2 2h30m, INC-1 25h30m; INC-3 still open
    assert restore.band_note == "not enough data (n=2)"
    people = example.metric("release_concentration")
    assert people is not None and people.value == 12 / 16
    assert example.metric("lead_time") is None
    assert {m["title"] for m in example.not_measured} >= {"Lead time for changes", "Approval wait"}


def test_warning_signs_of_the_example(example: Assessment) -> None:
    seen = {s.key: s.observed for s in example.signs}
    assert seen == {
        "one_person": True,
        "together": True,
        "weekly_slot": True,
        "tag_gap": None,
        "no_approver": True,
        "slips": False,
        "hotfixes": False,
        "irregular": False,
    }
    together = example.sign("together")
    assert together.numbers["groups"] == [
        {"services": ["ledger", "payments"], "days_all": 6, "days_any": 7}
    ]
    assert "6 of 9 (67%) release days saw two or more services" in together.evidence
    assert example.sign("weekly_slot").evidence.startswith(
        "5 of 9 (56%) release days fell on a Tuesday; Tuesday and Thursday together: 9 of 9"
    )
    assert "2 of 16 (12%) releases have no approver recorded (rows 4, 9)" in (
        example.sign("no_approver").evidence
    )
    assert example.sign("slips").numbers == {"planned": 16, "late": 3, "early": 0}
    assert example.sign("hotfixes").numbers == {"releases": 16, "hotfixes": 1}
    assert "median gap 5 days, longest 7 days, variation 0.47" in example.sign("irregular").evidence


def test_steps_and_problems_of_the_example(example: Assessment) -> None:
    titles = [s.title for s in example.steps]
    assert titles[:4] == [
        "Pilot Interlock on search",  # the only service not tied to another
        "Turn database migrations into a pipeline step",
        "Turn manual checks after deploying into a check gate",
        "Turn service restarts into a pipeline step",
    ]
    assert "Record every approval as an approval gate" in titles
    assert titles[-1] == "Run this assessment again in six weeks"
    assert [str(p) for p in example.problems] == [
        "releases.csv, row 15: column 'Release date': 'next tuesday' is not a date; write it"
        " as YYYY-MM-DD or YYYY-MM-DD HH:MM (optionally with +HH:MM or Z) (row left out)"
    ]
    ledger = next(s for s in example.services if s.service == "ledger")
    assert (ledger.releases, ledger.change_failures, ledger.often_with) == (6, 1, ["payments"])


def test_time_zone_moves_days_and_is_stated(tmp_path: Path) -> None:
    sheet = tmp_path / "r.csv"
    # 01:00 UTC on Tuesdays is still Monday evening in New York
    days = ["2024-03-05", "2024-03-12", "2024-03-19", "2024-03-26", "2024-04-02"]
    sheet.write_text(
        "date,service\n" + "".join(f"{d}T01:00:00Z,api\n" for d in days), encoding="utf-8"
    )
    utc = assess(AssessOptions(releases=sheet), now=NOW)
    assert utc.sign("weekly_slot").evidence.startswith(
        "5 of 5 (100%) release days fell on a Tuesday"
    )
    assert "read as UTC (the default" in utc.assumptions[0]
    new_york = assess(AssessOptions(releases=sheet, zone=ZoneInfo("America/New_York")), now=NOW)
    assert new_york.sign("weekly_slot").evidence.startswith(
        "5 of 5 (100%) release days fell on a Monday"
    )
    assert new_york.zone == "America/New_York"
    assert "read as America/New_York." in new_york.assumptions[0]


def test_no_usable_rows_is_an_error_with_every_row(tmp_path: Path) -> None:
    sheet = tmp_path / "r.csv"
    sheet.write_text("date,service\nsoon,api\n,api\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no usable release rows") as caught:
        assess(AssessOptions(releases=sheet), now=NOW)
    messages = [e["message"] for e in caught.value.extra["errors"]]
    assert messages[0].startswith("r.csv, row 2: column 'date': 'soon' is not a date")
    assert messages[1] == "r.csv, row 3: column 'date' is empty (row left out)"


def test_nothing_to_assess() -> None:
    with pytest.raises(InvalidInput, match="give --releases SHEET, --git REPO, or both"):
        assess(AssessOptions())
