"""The YAML examples of docs/gates-windows-and-metrics.md are valid gate blocks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from interlock.domain.windows import WindowPolicy, decide
from interlock.spec.metric_gate import MetricGateSpec
from interlock.spec.windows import WindowSpec

DOC = Path(__file__).resolve().parents[3] / "docs" / "gates-windows-and-metrics.md"


def blocks() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for text in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S):
        found.update(yaml.safe_load(text))
    return found


def test_the_window_example_is_valid_and_works(tmp_path: Path) -> None:
    spec = WindowSpec.model_validate(blocks()["window"])
    (tmp_path / "freezes.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
    )
    rules = WindowPolicy.from_spec(spec, base_dir=tmp_path)
    decision = decide(datetime(2026, 6, 10, 10, 30, tzinfo=UTC), rules)  # 12:30 CEST
    assert not decision.open
    assert "database upgrade" in decision.reason


def test_the_metric_example_is_valid() -> None:
    spec = MetricGateSpec.model_validate(blocks()["metric"])
    assert spec.threshold.holds(0.002)
    assert (spec.interval, spec.timeout, spec.request_timeout) == (30.0, 600.0, 10.0)
