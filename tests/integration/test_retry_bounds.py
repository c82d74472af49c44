"""A retry's wait doubles up to its bound: 50 retries of the longest backoff all get recorded.

The wait used to double without end: the 14th retry of a 366d backoff is past
the year 9999, and recording that failure broke (OverflowError), so the step
stayed where it was. A manual clock plays the years.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.domain.bounds import MAX_DURATION
from interlock.domain.states import NodeState, ReleaseState
from interlock.engine import views
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from tests.conftest import FAST
from tests.helpers import release_state
from tests.integration.conftest import Pilot
from tests.support.driver import EngineDriver

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: flaky, run: "exit 3", retries: 20, backoff: 366d}
"""


def test_twenty_retries_of_a_366d_backoff_each_wait_366d_and_the_release_fails(db, tmp_path):
    clock = ManualClock(datetime(2026, 12, 10, 12, 0, tzinfo=UTC))
    pilot = Pilot(Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__)), tmp_path)
    pilot.config(CONFIG)
    driver = EngineDriver(pilot.engine)  # each try runs in the test thread, no waiting
    release = pilot.release("api@1.0.0")
    [node_id] = [n.id for n in views.release_view(pilot.engine, release.id).deployments[0].nodes]
    for attempt in range(1, 21):
        driver.run_until_idle()
        node, _ = views.step(pilot.engine, node_id)
        assert node.attempt == attempt and node.state is NodeState.READY
        assert node.not_before - clock.now() == timedelta(
            seconds=min(MAX_DURATION, 366 * 86400 * 2 ** (attempt - 1))
        )
        clock.set(node.not_before)
    driver.run_until_idle()
    done = release_state(pilot.engine, release.id)
    assert done.state is ReleaseState.FAILED
    node, attempts = views.step(pilot.engine, node_id)
    assert node.attempt == 21 and len(attempts) == 21
