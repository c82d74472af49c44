"""Hand-over: a commit that makes a step ready starts it on an idle worker of this process.

The transaction that readies a node claims it for an idle worker there and
then (lease, attempt, ``step.started``, all in that one commit) and hands it
over as it commits: no wake-up, no claim transaction of the worker's own. The
poll interval and tick are far beyond what the tests wait, so a step that runs
in time was handed over (or woken), never found by polling.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from interlock.domain.states import NodeState, ReleaseState
from tests.helpers import idle_workers, wait_for, wait_release_end

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy: [{name: a, run: "true", idempotent: true}]
  web:
    deploy: [{name: a, run: "true", idempotent: true}]
"""


@pytest.fixture
def idle(pilot: Any) -> Any:
    """Two idle workers that would not look for work on their own for a minute."""
    pilot.config(CONFIG)
    with idle_workers(pilot.engine) as pool:
        yield pool


def _steps(pilot: Any, release_id: int) -> list[Any]:
    with pilot.read() as tx:
        deployments = tx.list_deployments(release_id=release_id)
        return [n for d in deployments for n in tx.nodes_of(d.id) if n.kind == "step"]


def test_the_commit_that_readies_two_steps_starts_both_on_idle_workers(pilot, idle):
    announced: list[set[str]] = []  # by the commits of this (the test's) thread
    here = threading.current_thread()
    pilot.engine.db.on_commit(
        lambda channels: announced.append(channels) if threading.current_thread() is here else None
    )
    release = pilot.release("api@1.0", "web@1.0")
    # Both steps were claimed in the release's own commit, by the two workers...
    steps = _steps(pilot, release.id)
    assert len(steps) == 2
    assert all(n.state is not NodeState.READY for n in steps), [n.state for n in steps]
    assert {n.lease_owner for n in steps if n.lease_owner} <= {
        f"{pilot.engine.instance}:worker-0",
        f"{pilot.engine.instance}:worker-1",
    }
    # ...so the commit woke no one (nothing was left for a worker to find)...
    assert not any("work" in channels for channels in announced)
    # ...and the steps ran at once, with no poll within a minute.
    assert wait_release_end(pilot.engine, release.id, timeout=20).state is ReleaseState.SUCCEEDED
    with pilot.read() as tx:
        events = [e.action for e in tx.list_audit(object_type="step")]
    assert events.count("step.started") == 2


def test_a_rolled_back_commit_hands_nothing_over_and_the_worker_waits_again(pilot, idle):
    def refuse(tx: Any, events: list[dict[str, Any]]) -> None:
        if any(e["action"] == "step.started" for e in events):
            raise RuntimeError("the disk is full")

    pilot.engine.db.audit_hooks.append(refuse)
    with pytest.raises(RuntimeError, match="the disk is full"):
        pilot.release("api@1.0")
    pilot.engine.db.audit_hooks.remove(refuse)
    with pilot.read() as tx:
        assert tx.list_releases(limit=10) == []  # nothing of it committed
    # Both workers are idle again, ready to be handed the next one.
    wait_for(lambda: len(idle._idle._slots) == 2, message="both workers idle again")
    release = pilot.release("api@1.0")
    assert wait_release_end(pilot.engine, release.id, timeout=20).state is ReleaseState.SUCCEEDED
