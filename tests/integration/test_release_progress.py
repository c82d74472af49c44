"""Release progress, as `release show` and `release watch` print it: steps and environments done."""

from __future__ import annotations

from interlock.api.routers.releases import release_out
from interlock.api.schemas import Progress
from interlock.domain.states import ReleaseState
from interlock.engine import views
from tests.helpers import running, wait_release_end
from tests.integration.test_recovery_ops import rollback_api

CONFIG = """\
version: 1
environments:
  - {name: production, production: true, on_failure: rollback}
services:
  api:
    deploy:
      - {name: fetch, run: "echo {{ version }} > fetched.txt"}
      - {name: roll-out, run: "echo {{ version }} > current.txt; test ! -f fail-{{ version }}"}
"""


def progress(pilot, release_id: int) -> Progress | None:
    return release_out(views.release_view(pilot.engine, release_id)).progress


def test_a_succeeded_rollback_release_counts_its_environment_and_steps(pilot):
    pilot.config(CONFIG)
    with running(pilot.engine):
        for version in ("1", "2"):
            wait_release_end(pilot.engine, pilot.release(f"api@{version}").id)
        started = rollback_api(pilot, reason="INC-1: errors up")
        done = wait_release_end(pilot.engine, started["release"])
    assert done.state is ReleaseState.SUCCEEDED and done.kind == "rollback"
    assert progress(pilot, done.id) == Progress(
        steps_done=2, steps_total=2, environments_done=1, environments_total=1
    )


def test_rollback_steps_of_a_failed_deployment_are_not_counted_as_its_steps(pilot):
    pilot.config(CONFIG)
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        wait_release_end(pilot.engine, pilot.release("api@1").id)
        done = wait_release_end(pilot.engine, pilot.release("api@2").id)
    assert done.state is ReleaseState.FAILED  # fetch succeeded, roll-out failed, rolled back
    assert progress(pilot, done.id) == Progress(
        steps_done=1, steps_total=2, environments_done=0, environments_total=1
    )
