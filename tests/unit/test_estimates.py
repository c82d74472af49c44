"""How long a release is expected to take: steps by their medians, gates by what holds them."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

from interlock.domain.plan import ReleaseItem, ReleasePlan
from interlock.engine.estimates import estimate_plan
from interlock.spec.loader import parse_config
from interlock.spec.planner import build_plan

CONFIG = textwrap.dedent("""\
    version: 1
    roles: {release-managers: [ann, bob]}
    environments:
      - name: staging
        gates:
          after:
            - soak: {duration: 5m}
      - name: production
        gates:
          before:
            - window:
                timezone: UTC
                allow: [{days: [mon, tue, wed, thu, fri], from: "09:00", to: "16:00"}]
            - approval: {rules: [{role: release-managers}]}
    services:
      db: {deploy: [{name: migrate, run: "true"}]}
      api: {depends_on: [db], deploy: [{name: roll-out, run: "true"}]}
    """)

STEPS = {
    "staging": {"db/migrate": 30.0, "api/roll-out": 60.0},
    "production": {"db/migrate": 40.0, "api/roll-out": 80.0},
}


def plan() -> ReleasePlan:
    config = parse_config(CONFIG, Path("/srv/interlock.yaml"))
    items = [ReleaseItem("db", "2"), ReleaseItem("api", "2")]
    return build_plan(config, items, config_version=1, base_dir=Path("/srv"))


def test_each_environment_counts_its_steps_and_gates_and_the_total_adds_them_up():
    # Friday 15:00 UTC: staging takes 30 s + 60 s + a 5 min soak = 6.5 min, so
    # production is reached at 15:06:30, inside the window (open until 16:00).
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    gates = {"production": {"gate/approval": 1800.0}}
    found = estimate_plan(plan(), STEPS, gates, now=friday)
    staging, production = found.environments
    assert staging.seconds == 30 + 60 + 300
    assert [(g.type, g.seconds) for g in staging.gates] == [("soak", 300.0)]
    waits = {g.type: g for g in production.gates}
    assert waits["window"].seconds == 0 and "open" in waits["window"].basis
    assert waits["approval"].seconds == 1800
    assert waits["approval"].basis == "median approval wait from history"
    assert production.seconds == 1800 + 40 + 80
    assert found.total_seconds == staging.seconds + production.seconds
    assert production.starts_at == "2026-12-04T15:06:30+00:00"
    assert found.known


def test_a_closed_window_counts_the_time_until_it_opens():
    # Friday 15:58: production is reached after 16:00, so it waits for Monday 09:00.
    late = datetime(2026, 12, 4, 15, 58, tzinfo=UTC)
    found = estimate_plan(plan(), STEPS, {}, now=late)
    production = found.environments[1]
    window = next(g for g in production.gates if g.type == "window")
    reached = datetime(2026, 12, 4, 16, 4, 30, tzinfo=UTC)
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert window.seconds == (monday - reached).total_seconds()
    assert window.basis.startswith("opens at 2026-12-07T09:00")
    # No approval history: nothing to go on, said so, counted as nothing.
    approval = next(g for g in production.gates if g.type == "approval")
    assert approval.seconds is None and approval.basis == "no approval given here before"
    assert production.seconds == window.seconds + 40 + 80


def test_steps_that_never_ran_are_counted_and_said():
    found = estimate_plan(plan(), {}, {}, now=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
    assert [e.steps_without_history for e in found.environments] == [2, 2]
    assert found.environments[0].seconds == 300  # the soak still counts
    assert not found.known
