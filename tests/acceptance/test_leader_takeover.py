"""kill -9 the process that runs the scheduler: another takes over and the timers still fire.

A server (the first process, so it wins the election) runs a long step (its
first attempt outlasts the test's set-up even on a loaded machine) and holds
a release scheduled a few seconds ahead; then it is killed. The worker
process must take the scheduler over within seconds, recover the dead
server's lease (the idempotent step runs again) and start the scheduled
release on time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain.states import ReleaseState
from interlock.engine import views
from interlock.engine.core import Engine
from interlock.storage.db import Database
from tests.helpers import wait_for, write_config
from tests.support.postgres import leader_of
from tests.support.server import Server
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.postgres

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  held:
    deploy:
      - name: hold
        run: >-
          echo "start $INTERLOCK_ATTEMPT" >> held.log;
          if [ "$INTERLOCK_ATTEMPT" = 1 ]; then sleep 20; else sleep 1; fi;
          echo end >> held.log
        idempotent: true
  timed:
    deploy:
      - {name: go, run: echo go >> timed.log, idempotent: true}
"""


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_the_scheduler_moves_to_a_live_process_and_its_timers_fire(project, pg_database_url):
    write_config(project, CONFIG)
    server = Server(project, pg_database_url)
    worker = WorkerProcess(project, pg_database_url, "--concurrency", "2", "--lease-ttl", "2")
    db = Database(pg_database_url)
    engine = Engine(db)
    try:
        server.start("--workers", "1", "--lease-ttl", "2")
        wait_for(lambda: leader_of(pg_database_url) is not None, message="a leader")
        assert leader_of(pg_database_url).endswith(f":{server.process.pid}")

        held = int(server.cli("release", "create", "held@1.0", "--reason", "T-1").stdout)
        wait_for(lambda: "start 1" in _lines(project / "held.log"), message="the long step")
        worker.start()  # only now, so the server's own worker holds the long step
        # `release create --at` schedules; the timer that fires after the kill is set
        # through the API, whose answer takes milliseconds (a CLI run took longer than the
        # timer's 5 s on a loaded machine, and the timer fired before the kill).
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        later = server.json(
            "release", "create", "timed@0.9", "--reason", "T-3", "--at", tomorrow.isoformat()
        )
        assert later["state"] == "scheduled"
        assert datetime.fromisoformat(later["scheduled_at"]) == tomorrow
        at = datetime.now(UTC) + timedelta(seconds=5)
        timed = int(server.create("timed@1.0", reason="T-2", at=at.isoformat()))
        server.kill()
        if datetime.now(UTC) >= at:
            pytest.skip("the machine took the timer's 5 s to create the release and kill")
        assert views.release_view(engine, timed).release.state is ReleaseState.SCHEDULED

        killed = time.monotonic()
        wait_for(
            lambda: (leader_of(pg_database_url) or "").endswith(f":{worker.process.pid}"),
            timeout=15,
            interval=0.1,
            message="the worker to take the scheduler over",
        )
        takeover = time.monotonic() - killed

        ended = wait_for(
            lambda: all(views.release_view(engine, r).release.finished_at for r in (held, timed)),
            timeout=30,
            message="both releases to end",
        )
        assert ended
        held_view = views.release_view(engine, held)
        timed_view = views.release_view(engine, timed)
        started = views.audit_events(
            engine, object_type="release", object_id=str(timed), actions=["release.running"]
        )
        verified = views.audit_verify(engine).ok
    finally:
        server.stop()
        worker.stop()
        db.dispose()

    assert takeover < 5.0, f"takeover took {takeover:.1f}s"
    # Lease recovery happened in the new leader: the idempotent step ran again.
    assert held_view.release.state is ReleaseState.SUCCEEDED, worker.log()
    attempts = next(iter(held_view.deployments[0].attempts.values()))
    assert [a.outcome for a in attempts] == ["lost", "succeeded"]
    assert attempts[1].worker.startswith(worker.instance)
    # The timer set before the kill fired in the new leader, on time.
    assert timed_view.release.state is ReleaseState.SUCCEEDED
    assert len(started) == 1 and started[0].at >= at
    assert (started[0].at - at).total_seconds() < 3.0
    assert _lines(project / "timed.log") == ["go"]
    assert verified
    print(f"scheduler takeover {takeover:.2f}s after kill -9")
