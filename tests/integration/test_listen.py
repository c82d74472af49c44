"""LISTEN/NOTIFY: a commit in another process wakes this one's workers at once.

"Another process" is a second :class:`Database` on the same PostgreSQL
database: its commits reach this engine's workers only through NOTIFY, just
as a commit by another server would. The poll interval is set far beyond
what the tests wait, so a prompt pick-up can only come from the wake-up.
"""

from __future__ import annotations

import time

import pytest

from interlock.domain.records import Item
from interlock.domain.states import NodeState
from interlock.engine import views
from interlock.engine.core import Engine, Settings
from interlock.engine.releases import cancel_release, create_release
from interlock.engine.runtime import Runtime
from interlock.storage.db import Database
from tests.helpers import wait_for, write_config
from tests.support.postgres import pg_query

pytestmark = pytest.mark.postgres

POLL = 30.0  # far longer than any wait below: only a NOTIFY can wake a worker in time

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: first, run: "true", idempotent: true}
  slow:
    deploy:
      - {name: wait, run: "sleep 30", idempotent: true}
"""


class Other:
    """A second process's view of the database: its own engine, pool and listeners."""

    def __init__(self, url: str, directory) -> None:
        self.db = Database(url)
        self.engine = Engine(self.db, settings=Settings(poll_interval=POLL))
        self.configs = self.engine.configs
        self.configs.load_file(write_config(directory, CONFIG), actor="tester")

    def release(self, service: str) -> int:
        return create_release(
            self.engine, self.configs, actor="bob", items=[Item(service, "1.0")], reason="T-1"
        ).id


@pytest.fixture
def here(pg_database_url):
    db = Database(pg_database_url)
    settings = Settings(poll_interval=POLL, tick=POLL, lease_ttl=2 * POLL, kill_grace=1.0)
    yield Engine(db, settings=settings)
    db.dispose()


@pytest.fixture
def other(pg_database_url, tmp_path):
    found = Other(pg_database_url, tmp_path)
    yield found
    found.db.dispose()


def _idle_runtime(engine: Engine, *, listen: bool = True) -> Runtime:
    runtime = Runtime(engine, workers=2, scheduler=False, listen=listen)
    runtime.start()
    if runtime.listener is not None:
        assert runtime.listener.connected.wait(10)
    time.sleep(0.3)  # the workers found nothing and now wait (for POLL seconds)
    return runtime


def _first_attempt(engine: Engine, release_id: int):
    for deployment in views.release_view(engine, release_id).deployments:
        for attempts in deployment.attempts.values():
            if attempts:
                return attempts[0]
    return None


def _pick_up_delay(engine: Engine, release_id: int, timeout: float) -> float | None:
    """Seconds from the release's creation to its first step starting, if it started."""
    created = views.release_view(engine, release_id).release.created_at
    try:
        first = wait_for(
            lambda: _first_attempt(engine, release_id),
            timeout=timeout,
            message="the step to start",
        )
    except AssertionError:
        return None
    return (first.started_at - created).total_seconds()


def test_a_step_made_ready_elsewhere_is_claimed_well_under_the_poll_interval(here, other):
    runtime = _idle_runtime(here)
    try:
        delays = []
        for _ in range(3):
            release_id = other.release("api")
            delay = _pick_up_delay(here, release_id, timeout=15)
            assert delay is not None, "the step was not claimed within 15s"
            delays.append(delay)
    finally:
        runtime.stop(drain=2)
    # The poll interval is 30s: anything well under it came from a NOTIFY (typically
    # tens of milliseconds; the margin is for a loaded CI machine).
    assert max(delays) < 5.0, delays
    print(f"pick-up after a remote commit: {', '.join(f'{d * 1000:.0f} ms' for d in delays)}")


def test_without_listen_the_same_step_waits_for_the_poll(here, other):
    """The control: the prompt pick-up above comes from LISTEN/NOTIFY, nothing else."""
    runtime = _idle_runtime(here, listen=False)
    try:
        release_id = other.release("api")
        assert _pick_up_delay(here, release_id, timeout=2) is None
    finally:
        runtime.stop(drain=2)


def test_a_cancel_from_another_process_stops_the_running_step_at_once(here, other):
    runtime = _idle_runtime(here)
    try:
        release_id = other.release("slow")
        wait_for(
            lambda: runtime.pool is not None and runtime.pool.running_jobs() == 1,
            timeout=5,
            message="the slow step to run here",
        )
        asked = time.monotonic()
        cancel_release(other.engine, release_id, actor="bob", reason="stop")
        # The heartbeat runs every POLL seconds; only the NOTIFY pokes it sooner.
        wait_for(
            lambda: runtime.pool is not None and runtime.pool.running_jobs() == 0,
            timeout=5,
            message="the step to stop",
        )
        took = time.monotonic() - asked
    finally:
        runtime.stop(drain=2)
    node = views.release_view(here, release_id).deployments[0].nodes[0]
    assert node.state is NodeState.CANCELLED
    assert took < 3.0  # kill_grace is 1s; the heartbeat alone would take 30s


def test_the_listener_reconnects_and_wakes_workers_again(here, other, pg_database_url):
    runtime = _idle_runtime(here)
    try:
        listener = runtime.listener
        assert listener is not None
        pid = listener.backend_pid
        pg_query(pg_database_url, "SELECT pg_terminate_backend(%s)", pid)
        wait_for(
            lambda: listener.connections == 2 and listener.connected.is_set(),
            timeout=10,
            message="the listener to reconnect",
        )
        assert listener.backend_pid != pid
        time.sleep(0.3)
        delay = _pick_up_delay(here, other.release("api"), timeout=5)
    finally:
        runtime.stop(drain=2)
    # Picked up within the 5 s looked for, where the next poll is 30 s away: the
    # reconnected listener's NOTIFY woke a worker (no bound on how fast: the load decides).
    assert delay is not None
