"""Recovery paths: a failing after-gate, declared rollback steps, rollbacks during a freeze."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.engine import incidents, views
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from tests.conftest import FAST
from tests.helpers import running, wait_for, wait_release_end
from tests.integration.conftest import Pilot
from tests.integration.test_recovery_ops import rollback_api

ROLL_OUT = """\
      - name: roll-out
        run: >-
          echo {{{{ version }}}} > current.txt; echo "deploy {{{{ version }}}}" >> story.log;
          test ! -f fail-{{{{ version }}}}
"""


def current(pilot: Pilot) -> str:
    return (pilot.dir / "current.txt").read_text().strip()


def story(pilot: Pilot) -> list[str]:
    return (pilot.dir / "story.log").read_text().splitlines()


def deploy(pilot: Pilot, version: str):
    return wait_release_end(pilot.engine, pilot.release(f"api@{version}").id)


def nodes_of(pilot: Pilot, release_id: int):
    return views.release_view(pilot.engine, release_id).deployments[0].nodes


def test_a_failing_after_gate_in_production_rolls_back_and_opens_an_incident(pilot):
    pilot.config(
        """\
version: 1
environments:
  - name: production
    production: true
    on_failure: rollback
    gates:
      after:
        - check: {run: "test ! -f broken.flag", interval: 0.1, timeout: 1s}
services:
  api:
    deploy:
"""
        + ROLL_OUT.format()
    )
    with running(pilot.engine):
        assert deploy(pilot, "1").state is ReleaseState.SUCCEEDED
        assert incidents.incidents(pilot.engine) == []
        (pilot.dir / "broken.flag").touch()  # version 2 deploys fine but does not verify
        done = deploy(pilot, "2")
    assert done.state is ReleaseState.FAILED
    assert current(pilot) == "1"  # the target shows the previous version again
    assert story(pilot) == ["deploy 1", "deploy 2", "deploy 1"]
    view = views.release_view(pilot.engine, done.id).deployments[0]
    deployment = view.deployment
    assert deployment.state is DeploymentState.ROLLED_BACK
    assert "rolled back: api is back on 1" in done.error
    gate = next(n for n in view.nodes if n.key == "gate/check")
    assert gate.state is NodeState.FAILED
    rolled = [n for n in view.nodes if n.phase == "rollback"]
    assert [n.state for n in rolled] == [NodeState.SUCCEEDED]
    [incident] = incidents.incidents(pilot.engine, state="open")
    assert incident.deployment_id == deployment.id and incident.release_id == done.id
    assert incident.service == "api" and incident.environment == "production"
    with pilot.read() as tx:
        assert tx.inventory_entry("api", "production").version == "1"


DECLARED = (
    """\
version: 1
environments:
  - name: production
    production: true
    on_failure: rollback
services:
  api:
    deploy:
"""
    + ROLL_OUT.format()
    + """\
    rollback:
      - name: roll-back
        run: >-
          echo {{ version }} > current.txt;
          echo "rollback to {{ version }} from {{ previous_version }}
          ($INTERLOCK_VERSION)" >> story.log
"""
)


def test_declared_rollback_steps_run_instead_of_the_deploy_steps(pilot):
    pilot.config(DECLARED)
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        assert deploy(pilot, "1").state is ReleaseState.SUCCEEDED
        done = deploy(pilot, "2")
    assert done.state is ReleaseState.FAILED
    assert current(pilot) == "1"
    # The declared step ran with the previous version; the deploy step did not run again.
    assert story(pilot) == ["deploy 1", "deploy 2", "rollback to 1 from 2 (1)"]
    view = views.release_view(pilot.engine, done.id).deployments[0]
    assert view.deployment.state is DeploymentState.ROLLED_BACK
    rolled = [(n.name, n.state) for n in view.nodes if n.phase == "rollback"]
    assert rolled == [("roll-back", NodeState.SUCCEEDED)]
    with pilot.read() as tx:
        assert tx.inventory_entry("api", "production").version == "1"


def test_a_manual_rollback_runs_the_declared_rollback_steps_too(pilot):
    pilot.config(DECLARED)
    with running(pilot.engine):
        deploy(pilot, "1")
        deploy(pilot, "2")
        started = rollback_api(pilot, reason="INC-9: errors up")
        done = wait_release_end(pilot.engine, started["release"])
    assert done.state is ReleaseState.SUCCEEDED and done.kind == "rollback"
    assert current(pilot) == "1"
    assert story(pilot) == ["deploy 1", "deploy 2", "rollback to 1 from 2 (1)"]


@pytest.fixture
def clocked(db, tmp_path) -> Iterator[tuple[Pilot, ManualClock]]:
    clock = ManualClock(datetime(2026, 12, 10, 12, 0, tzinfo=UTC))
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    yield Pilot(engine, tmp_path), clock


def _frozen(during_freeze: bool | None) -> str:
    setting = (
        ""
        if during_freeze is None
        else f"    rollback_during_freeze: {str(during_freeze).lower()}\n"
    )
    return (
        """\
version: 1
environments:
  - name: production
    production: true
"""
        + setting
        + """\
    gates:
      before:
        - window:
            timezone: UTC
            freeze: [{from: 2026-12-20, to: 2027-01-03, reason: year-end freeze}]
services:
  api:
    deploy:
"""
        + ROLL_OUT.format()
    )


def test_a_rollback_is_not_held_back_by_a_freeze_unless_the_environment_says_so(clocked):
    pilot, clock = clocked
    pilot.config(_frozen(None))
    with running(pilot.engine):
        assert deploy(pilot, "1").state is ReleaseState.SUCCEEDED
        assert deploy(pilot, "2").state is ReleaseState.SUCCEEDED
        clock.set(datetime(2026, 12, 24, 12, 0, tzinfo=UTC))  # in the year-end freeze
        # By default the freeze does not hold the rollback back.
        first = rollback_api(pilot, reason="INC-9: errors up")
        assert (first["from"], first["to"]) == ("2", "1")
        done = wait_release_end(pilot.engine, first["release"])
        assert done.state is ReleaseState.SUCCEEDED and current(pilot) == "1"
        assert all(n.kind != "gate" for n in nodes_of(pilot, done.id))

        # With rollback_during_freeze: false the rollback waits for the freeze to end.
        pilot.config(_frozen(False))
        second = rollback_api(pilot, reason="INC-9: errors up")
        assert (second["from"], second["to"]) == ("1", "2")
        gate = wait_for(
            lambda: (
                (n := next(n for n in nodes_of(pilot, second["release"]) if n.kind == "gate"))
                and n.attempt >= 1
                and n.state is NodeState.READY
                and n
            ),
            message="the freeze to hold the rollback",
        )
        assert gate.key == "gate/window"
        assert gate.not_before == datetime(2027, 1, 4, 0, 0, tzinfo=UTC)
        assert views.release_view(pilot.engine, second["release"]).release.finished_at is None
        assert current(pilot) == "1" and story(pilot)[-1] == "deploy 1"
        clock.set(datetime(2027, 1, 4, 0, 0, 1, tzinfo=UTC))  # the freeze is over
        done = wait_release_end(pilot.engine, second["release"])
    assert done.state is ReleaseState.SUCCEEDED and current(pilot) == "2"
    with pilot.read() as tx:
        assert tx.inventory_entry("api", "production").version == "2"
