"""A deployment queued while the one ahead of it ends is started by one of the two.

On PostgreSQL the transaction that ends a deployment looks at its
environment's queue only when something is queued there (it takes the queue's
lock only then). These tests hold one of the two transactions open just
before its commit, with its work done, while the other one runs on its own
connection: whichever commits second must start the queued deployment, not
leave it to the scheduler's safety net (no scheduler runs here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from interlock.domain.states import DeploymentState, ReleaseState
from interlock.engine import views
from interlock.engine.releases import cancel_release
from tests.helpers import wait_for

pytestmark = pytest.mark.postgres

CONFIG = """\
version: 1
environments: [{name: dev}]
services:
  svc: {deploy: [{name: step, run: "true"}]}
"""


class Held:
    """Runs ``work`` in a thread whose transaction waits just before its commit."""

    def __init__(self, engine: Any, name: str, work: Callable[[], Any]) -> None:
        self.name = name
        self.reached = threading.Event()  # its work is done, its commit waits
        self.go = threading.Event()
        self.result: list[Any] = []
        self.error: list[BaseException] = []
        engine.db.audit_hooks.append(self._hook)
        self.thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)

    def _hook(self, tx: Any, events: list[dict[str, Any]]) -> None:
        if threading.current_thread().name == self.name:
            self.reached.set()
            assert self.go.wait(30), "never let go"

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self.result.append(work())
        except BaseException as exc:  # reported by the test
            self.error.append(exc)

    def start(self) -> Held:
        self.thread.start()
        return self


def _runs(engine: Any, work: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _stuck_or_done(engine: Any, thread: threading.Thread) -> bool:
    """``thread`` ended, or some session of this database waits for a lock."""
    if not thread.is_alive():
        return True
    with engine.db.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar()
    return bool(waiting)


def _deployment_state(engine: Any, release_id: int) -> DeploymentState:
    [deployment] = views.release_view(engine, release_id).deployments
    return deployment.deployment.state


@pytest.mark.parametrize("first", ["ender", "queuer"])
def test_a_deployment_queued_while_the_one_ahead_ends_is_started(backend, pilot, first):
    """Either transaction held open before its commit while the other runs: no lost wake-up."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: the two cannot overlap")
    pilot.config(CONFIG)
    ahead = pilot.release("svc@1.0.0")  # runs (no worker takes its step)
    assert _deployment_state(pilot.engine, ahead.id) is DeploymentState.RUNNING
    queued: list[Any] = []

    def end() -> None:
        cancel_release(pilot.engine, ahead.id, actor="bob", reason="TEST-2: make room")

    def queue() -> None:
        queued.append(pilot.release("svc@1.1.0"))

    held = Held(pilot.engine, "held", end if first == "ender" else queue).start()
    assert held.reached.wait(30), "the held transaction never reached its commit"
    other = _runs(pilot.engine, queue if first == "ender" else end)
    # The other one either finished (it could not see the held one) or waits on a lock.
    wait_for(lambda: _stuck_or_done(pilot.engine, other), message="the other transaction")
    held.go.set()
    held.thread.join(30)
    other.join(30)
    assert not held.error, held.error
    assert not held.thread.is_alive() and not other.is_alive()
    [second] = queued or held.result
    assert _deployment_state(pilot.engine, ahead.id) is DeploymentState.CANCELLED
    assert _deployment_state(pilot.engine, second.id) is DeploymentState.RUNNING
    assert views.release_view(pilot.engine, second.id).release.state is ReleaseState.RUNNING
