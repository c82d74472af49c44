"""Release trains: dependency order, overlap of independent services, reverse rollback."""

from __future__ import annotations

import pytest

from interlock.domain.states import DeploymentState, ReleaseState
from interlock.engine import views
from interlock.engine.artifacts import register
from interlock.errors import Conflict
from tests.helpers import release_state, running, wait_release_end
from tests.support.driver import EngineDriver

DIAMOND = """\
version: 1
environments: [{{name: production, on_failure: {on_failure}, parallel: {parallel}}}]
services:
  db:
    deploy: [{{name: go, run: "{step}"}}]
  api:
    depends_on: [db]
    deploy: [{{name: go, run: "{step}"}}]
  worker:
    depends_on: [db]
    deploy: [{{name: go, run: "{step}"}}]
  web:
    depends_on: [api, worker]
    deploy: [{{name: go, run: "{step}"}}]
"""
STEP = (
    "echo {{{{ service }}}} {{{{ version }}}} >> order.log; sleep {pause}; "
    "test {{{{ version }}}} != {fail} || test {{{{ service }}}} != web"
)


def diamond(
    on_failure: str = "rollback", parallel: int = 4, fail: str = "none", pause: float = 0.4
) -> str:
    """The diamond; each step sleeps ``pause`` (for threads to overlap) and web@``fail`` fails."""
    step = STEP.format(fail=fail, pause=pause)
    return DIAMOND.format(on_failure=on_failure, parallel=parallel, step=step)


def _times(pilot, release_id: int) -> dict[str, tuple]:
    view = views.release_view(pilot.engine, release_id)
    out = {}
    for deployment in view.deployments:
        for node in deployment.nodes:
            attempts = deployment.attempts[node.id]
            if attempts:
                out[node.key] = (attempts[-1].started_at, attempts[-1].finished_at)
    return out


def test_a_diamond_runs_in_order_with_the_middle_overlapping(pilot):
    pilot.config(diamond())
    with running(pilot.engine, workers=4):
        release = pilot.release("web@1", "api@1", "worker@1", "db@1")
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    t = _times(pilot, release.id)
    db, api, worker, web = (t[f"{s}/go"] for s in ("db", "api", "worker", "web"))
    assert db[1] <= api[0] and db[1] <= worker[0]
    assert api[0] < worker[1] and worker[0] < api[1]  # the two overlap
    assert web[0] >= max(api[1], worker[1])
    shown = views.release_view(pilot.engine, release.id).deployments[0]
    assert views.service_states(shown.nodes) == {
        s: "deployed" for s in ("api", "db", "web", "worker")
    }


def test_the_parallel_limit_holds(pilot):
    pilot.config(diamond(parallel=1))
    with running(pilot.engine, workers=4):
        release = pilot.release("web@1", "api@1", "worker@1", "db@1")
        wait_release_end(pilot.engine, release.id)
    t = _times(pilot, release.id)
    spans = sorted(t.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_a_failure_in_the_last_service_rolls_the_train_back_in_reverse(pilot):
    # The order is the point, not overlap: the engine runs to idle in the test thread.
    pilot.config(diamond(fail="2", pause=0))
    driver = EngineDriver(pilot.engine)
    first = pilot.release("db@1", "api@1", "worker@1", "web@1")
    driver.run_until_idle()
    assert release_state(pilot.engine, first.id).state is ReleaseState.SUCCEEDED
    (pilot.dir / "order.log").write_text("")
    second = pilot.release("db@2", "api@2", "worker@2", "web@2")
    driver.run_until_idle()
    done = release_state(pilot.engine, second.id)
    assert done.state is ReleaseState.FAILED
    view = views.release_view(pilot.engine, second.id)
    deployment = view.deployments[0]
    assert deployment.deployment.state is DeploymentState.ROLLED_BACK
    assert views.service_states(deployment.nodes) == {
        s: "rolled_back" for s in ("api", "db", "web", "worker")
    }
    t = _times(pilot, second.id)
    back = {s: t[f"rollback/{s}/go"] for s in ("db", "api", "worker", "web")}
    assert back["web"][1] <= back["api"][0] and back["web"][1] <= back["worker"][0]
    assert max(back["api"][1], back["worker"][1]) <= back["db"][0]
    lines = (pilot.dir / "order.log").read_text().split("\n")
    rolled = [line for line in lines if line.endswith(" 1")]
    assert rolled[0] == "web 1" and rolled[-1] == "db 1"
    with pilot.read() as tx:
        assert {e.service: e.version for e in tx.all_inventory()} == {
            "db": "1",
            "api": "1",
            "worker": "1",
            "web": "1",
        }
    assert "rolled back: " in done.error and "web@2" not in done.error


def test_rollback_service_rolls_back_only_the_failed_service(pilot):
    pilot.config(diamond(on_failure="rollback_service", fail="2", pause=0))
    driver = EngineDriver(pilot.engine)
    first = pilot.release("db@1", "api@1", "worker@1", "web@1")
    driver.run_until_idle()
    assert release_state(pilot.engine, first.id).state is ReleaseState.SUCCEEDED
    second = pilot.release("db@2", "api@2", "worker@2", "web@2")
    driver.run_until_idle()
    done = release_state(pilot.engine, second.id)
    assert done.state is ReleaseState.FAILED
    deployment = views.release_view(pilot.engine, second.id).deployments[0]
    assert views.service_states(deployment.nodes) == {
        "db": "deployed",
        "api": "deployed",
        "worker": "deployed",
        "web": "rolled_back",
    }
    with pilot.read() as tx:
        assert {e.service: e.version for e in tx.all_inventory()} == {
            "db": "2",
            "api": "2",
            "worker": "2",
            "web": "1",
        }


def test_artifacts_are_pinned_and_immutable(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}, {name: production, require_artifacts: true}]
        services:
          api:
            deploy: [{name: go, run: "echo {{ digest }} $INTERLOCK_DIGEST >> digest.log"}]
        """)
    digest = "sha256:" + "a" * 64
    artifact, new = register(
        pilot.engine, actor="ci", service="api", version="1.0.0", digest=digest, commit="abcdef1"
    )
    assert new and artifact.commit_sha == "abcdef1"
    assert (
        register(pilot.engine, actor="ci", service="api", version="1.0.0", digest=digest)[1]
        is False
    )
    with pytest.raises(Conflict, match="already registered with digest sha256:aaaa"):
        register(
            pilot.engine, actor="ci", service="api", version="1.0.0", digest="sha256:" + "b" * 64
        )
    assert views.audit_events(pilot.engine, actions=["artifact.conflict"])
    with pytest.raises(Conflict, match="not a registered artifact"):
        pilot.release("api@9.9.9")
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    assert release.items[0].digest == digest
    assert (pilot.dir / "digest.log").read_text().split() == [digest] * 4
