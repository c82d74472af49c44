"""Deployments of two services in one environment end in overlapping transactions
(workers on two machines): the day's delivery sums count both.

On PostgreSQL a transaction that only finished deployments locks the delivery
facts of its own (service, environment) and, just before it sums them, its
(environment, day): the one held open here has summed its day and waits before
its commit while the other ends its deployment on its own connection.
"""

from __future__ import annotations

from typing import Any

import pytest

from interlock.engine.steps import claim, complete, prepare
from interlock.executors.base import StepResult
from tests.helpers import wait_for
from tests.integration.test_metrics_db import delivery_snapshot, rebuilt_snapshot
from tests.integration.test_queue_wakeup import Held, _runs, _stuck_or_done

pytestmark = pytest.mark.postgres

CONFIG = """\
version: 1
environments: [{name: dev}]
services:
  a: {deploy: [{name: step, run: "true"}]}
  b: {deploy: [{name: step, run: "true"}]}
"""


def test_deployments_ending_in_overlapping_transactions_are_both_summed(backend, pilot):
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: the two cannot overlap")
    pilot.config(CONFIG)
    services = ("a", "b")
    for n, service in enumerate(services):
        pilot.release(f"{service}@1.{n}.0")
    engine: Any = pilot.engine
    jobs = []
    for _ in services:  # both steps run, as two workers would run them
        claimed = engine.db.run(lambda tx: claim(tx, engine, "test-worker"))
        assert claimed is not None
        jobs.append(prepare(engine, *claimed))

    def end(job: Any) -> None:  # the step succeeded: its deployment ends, succeeded
        engine.db.run(lambda tx: complete(tx, engine, job, StepResult(ok=True, exit_code=0)))

    held = Held(engine, "held", lambda: end(jobs[0])).start()
    assert held.reached.wait(30), "the held transaction never reached its commit"
    other = _runs(engine, lambda: end(jobs[1]))
    wait_for(lambda: _stuck_or_done(engine, other), message="the other transaction")
    held.go.set()
    held.thread.join(30)
    other.join(30)
    assert not held.error, held.error
    assert not held.thread.is_alive() and not other.is_alive()
    kept = delivery_snapshot(pilot)
    assert len(kept["delivery_facts"]) == 2
    [(environment, _, person, releases)] = kept["delivery_people"]
    assert (environment, person, releases) == ("dev", "alice", 2)
    assert kept == rebuilt_snapshot(pilot)  # the sums of the day hold both
