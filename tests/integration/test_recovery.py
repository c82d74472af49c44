"""Leases: a dead worker's idempotent step runs again; any other step waits for a person."""

from __future__ import annotations

import time

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.engine import views
from interlock.engine.recovery import recover
from interlock.engine.steps import claim
from tests.helpers import running, wait_release_end

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: step, run: "echo ran >> runs.log", idempotent: %s}
"""


def _orphan(pilot, idempotent: bool):
    """Create a release whose first step a worker claimed and then died holding."""
    pilot.config(CONFIG % ("true" if idempotent else "false"))
    release = pilot.release("api@1.0.0")
    claimed = pilot.engine.db.run(lambda tx: claim(tx, pilot.engine, "host:1:dead-0"))
    assert claimed is not None
    return release, claimed[0]


def test_an_expired_idempotent_step_runs_again(pilot):
    normal_ttl = pilot.engine.settings.lease_ttl
    pilot.engine.settings.lease_ttl = 0.2
    release, node = _orphan(pilot, idempotent=True)
    time.sleep(0.3)
    assert recover(pilot.engine) == [("api/step", "ready")]
    # The re-run gets a normal lease: a 0.2 s one could expire on a loaded machine
    # between heartbeats and be recovered (and rightly run) a third time.
    pilot.engine.settings.lease_ttl = normal_ttl
    with running(pilot.engine):
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    assert (pilot.dir / "runs.log").read_text().count("ran") == 1
    step = views.step(pilot.engine, node.id)
    assert [a.outcome for a in step[1]] == ["lost", "succeeded"]
    assert [a.worker for a in step[1]][0] == "host:1:dead-0"
    recovered = views.audit_events(pilot.engine, actions=["step.recovered"])
    assert len(recovered) == 1


def test_an_unexpired_lease_is_left_alone(pilot):
    release, node = _orphan(pilot, idempotent=True)
    assert recover(pilot.engine) == []
    assert views.step(pilot.engine, node.id)[0].state is NodeState.RUNNING


def test_a_lost_non_idempotent_step_needs_attention_and_never_reruns(pilot):
    release, node = _orphan(pilot, idempotent=False)
    assert recover(pilot.engine, everything=True) == [("api/step", "needs_attention")]
    with running(pilot.engine):
        time.sleep(0.5)
    assert not (pilot.dir / "runs.log").exists()
    view = views.release_view(pilot.engine, release.id)
    assert view.release.state is ReleaseState.NEEDS_ATTENTION
    assert view.deployments[0].deployment.state is DeploymentState.NEEDS_ATTENTION
    step = view.deployments[0].nodes[0]
    assert step.state is NodeState.NEEDS_ATTENTION
    assert "not idempotent" in step.error


@pytest.mark.parametrize("ok", [False, True], ids=["failed", "succeeded"])
def test_a_stale_completion_is_not_applied(pilot, ok):
    """A worker that lost its lease (fenced off) cannot overwrite the new outcome,
    whether its run failed or succeeded (a success takes a shorter path)."""
    from interlock.engine.steps import complete, prepare
    from interlock.executors.base import StepResult

    pilot.engine.settings.lease_ttl = 0.1
    release, node = _orphan(pilot, idempotent=True)
    claimed = pilot.engine.db.run(lambda tx: tx.get_deployment(node.deployment_id))
    job = prepare(
        pilot.engine, node, claimed, pilot.engine.db.run(lambda tx: tx.get_release(release.id))
    )
    time.sleep(0.2)
    recover(pilot.engine)
    pilot.engine.db.run(lambda tx: complete(tx, pilot.engine, job, StepResult(ok=ok)))
    step, attempts = views.step(pilot.engine, node.id)
    assert step.state is NodeState.READY  # recovery's decision stands
    assert attempts[0].outcome == "lost"
    assert not views.audit_events(pilot.engine, actions=["step.succeeded", "step.failed"])
