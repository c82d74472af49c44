"""What a worker reads again as it records a step: nothing it already holds.

A worker holds its step's release (the parts that never change: items,
author, kind) from the claim on. The step that finishes a service records
it in the inventory from that copy; the release is read once more only as
its deployment ends (locked, with its plan, to move it on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from interlock.domain.states import ReleaseState
from interlock.engine.runtime import Runtime
from tests.helpers import wait_for, wait_release_end

SLOW = 60.0  # seconds: no worker polls or ticks within a test


@pytest.fixture
def release_reads(pilot: Any) -> Iterator[list[str]]:
    """The reads of a release's row the worker threads send."""
    counted: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split())
        if threading.current_thread().name.startswith("worker") and text.startswith(
            "SELECT releases."
        ):
            counted.append(text)

    event.listen(pilot.engine.db.engine, "before_cursor_execute", seen)
    yield counted
    event.remove(pilot.engine.db.engine, "before_cursor_execute", seen)


def test_a_finished_service_is_recorded_from_the_release_the_worker_holds(
    pilot: Any, release_reads: list[str]
) -> None:
    pilot.config(
        """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: build, uses: noop, idempotent: true}
      - {name: ship, uses: noop, idempotent: true}
"""
    )
    pilot.engine.settings.poll_interval = SLOW
    pilot.engine.settings.tick = SLOW
    runtime = Runtime(pilot.engine, workers=2, scheduler=False, listen=False)
    runtime.start()
    pool = runtime.pool
    assert pool is not None
    try:
        wait_for(lambda: len(pool._idle._slots) == 2, message="the workers idle")
        release = pilot.release("api@1.0")  # its commit hands the first step to a worker
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    finally:
        runtime.stop(drain=2.0)
    with pilot.read() as tx:
        entry = tx.inventory_entry("api", "staging")
    assert entry is not None
    assert (entry.version, entry.release_id, entry.deployed_by) == ("1.0", release.id, "alice")
    # Only the deployment's end reads the release (locked, with its plan).
    assert len(release_reads) == 1, release_reads
