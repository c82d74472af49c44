"""A worker goes on with its pipeline: the step its own step made ready, in the same commit.

A worker records its step's success and claims the next node in one
transaction. When that success readied exactly the next node of the same
deployment and another worker of the pool is idle (so no older ready node
waits for a worker), it leases that node by its id: no search for the oldest
ready node. With every worker busy it takes the oldest ready node, whoever's.
The poll interval and tick are far beyond what the tests wait.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from interlock.domain.states import ReleaseState
from interlock.engine.runtime import Runtime
from tests.helpers import wait_for, wait_release_end

SLOW = 60.0  # seconds: no worker polls or ticks within a test


def _runtime(pilot: Any, workers: int) -> Runtime:
    pilot.engine.settings.poll_interval = SLOW
    pilot.engine.settings.tick = SLOW
    runtime = Runtime(pilot.engine, workers=workers, scheduler=False, listen=False)
    runtime.start()
    pool = runtime.pool
    assert pool is not None
    wait_for(lambda: len(pool._idle._slots) == workers, message="the workers idle")
    return runtime


def _attempts(pilot: Any, release_id: int) -> list[Any]:
    """The release's step attempts, in the order they started."""
    with pilot.read() as tx:
        nodes = {
            n.id: n
            for d in tx.list_deployments(release_id=release_id)
            for n in tx.nodes_of(d.id)
            if n.kind == "step"
        }
        found = tx.attempts_of(list(nodes))
    return sorted((a.started_at, a.id, nodes[a.node_id].key, a.worker) for a in found)


@pytest.fixture
def searches(pilot: Any) -> Any:
    """How many times the workers searched for the oldest ready node."""
    counted: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The search: SQLite's statement, or PostgreSQL's claim function (migration 0026).
        search = "ORDER BY nodes.not_before" in statement or "interlock_claim(" in statement
        if threading.current_thread().name.startswith("worker") and search:
            counted.append(threading.current_thread().name)

    event.listen(pilot.engine.db.engine, "before_cursor_execute", seen)
    yield counted
    event.remove(pilot.engine.db.engine, "before_cursor_execute", seen)


def test_a_pipeline_goes_on_in_its_worker_without_searching_for_ready_nodes(pilot, searches):
    pilot.config(
        """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: build, run: "true", idempotent: true}
      - {name: test, run: "true", idempotent: true}
      - {name: ship, run: "true", idempotent: true}
"""
    )
    runtime = _runtime(pilot, workers=2)
    searches.clear()  # (each worker searched once as it started)
    try:
        release = pilot.release("api@1.0")
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    finally:
        runtime.stop(drain=2.0)
    runs = _attempts(pilot, release.id)
    assert [key for _, _, key, _ in runs] == ["api/build", "api/test", "api/ship"]
    assert len({worker for *_, worker in runs}) == 1, runs  # one worker ran the pipeline
    # The first step was handed over by the release's commit, the next two were kept by
    # the worker that readied them: it searched only once, after the last step.
    assert len(searches) == 1, searches


def test_with_every_worker_busy_the_oldest_ready_step_goes_first(pilot, tmp_path: Path):
    gate = tmp_path / "go"
    pilot.config(
        f"""\
version: 1
environments: [{{name: staging}}]
services:
  api:
    deploy:
      - {{name: build, run: "while [ ! -f {gate} ]; do sleep 0.02; done", idempotent: true}}
      - {{name: ship, run: "true", idempotent: true}}
  web:
    deploy:
      - {{name: ship, run: "true", idempotent: true}}
"""
    )
    runtime = _runtime(pilot, workers=1)
    try:
        first = pilot.release("api@1.0")
        wait_for(lambda: _attempts(pilot, first.id), message="api's build to start")
        second = pilot.release("web@1.0")  # ready, waiting for the one busy worker
        gate.write_text("")
        assert wait_release_end(pilot.engine, first.id).state is ReleaseState.SUCCEEDED
        assert wait_release_end(pilot.engine, second.id).state is ReleaseState.SUCCEEDED
    finally:
        runtime.stop(drain=2.0)
    web = _attempts(pilot, second.id)[0][0]
    api_ship = _attempts(pilot, first.id)[1]
    assert api_ship[2] == "api/ship"
    # web's step was ready first: it ran before the step api's build made ready.
    assert web <= api_ship[0], (web, api_ship)


def test_the_next_step_is_leased_by_the_statement_that_frees_it(pilot):
    """On SQLite: no lease statement of its own, and the audit tells the same story."""
    if pilot.engine.db.dialect != "sqlite":
        pytest.skip("PostgreSQL readies the node, then leases it by id")
    pilot.config(
        """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: build, uses: noop, idempotent: true}
      - {name: test, uses: noop, idempotent: true}
      - {name: ship, uses: noop, idempotent: true}
"""
    )
    leases: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name.startswith("worker") and statement.startswith(
            "UPDATE nodes SET state=?, attempt=(nodes.attempt + ?)"  # a claim's lease
        ):
            leases.append(statement)

    runtime = _runtime(pilot, workers=2)
    event.listen(pilot.engine.db.engine, "before_cursor_execute", seen)
    try:
        release = pilot.release("api@1.0")
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    finally:
        event.remove(pilot.engine.db.engine, "before_cursor_execute", seen)
        runtime.stop(drain=2.0)
    runs = _attempts(pilot, release.id)
    assert [key for _, _, key, _ in runs] == ["api/build", "api/test", "api/ship"]
    assert len({worker for *_, worker in runs}) == 1, runs
    assert leases == []  # (the first step was handed over by the release's own commit)
    with pilot.read() as tx:
        events = [
            (e.action, e.body)
            for e in tx.list_audit(object_type="step", limit=100)
            if e.action in ("step.started", "step.succeeded")
        ]
    assert [action for action, _ in events] == ["step.started", "step.succeeded"] * 3
    for action, body in events:
        before = '"before":{"state":"ready"}' if action == "step.started" else '"running"'
        assert before in body, body
