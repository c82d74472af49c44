"""The durable engine on real databases: releases move, fail, retry, cancel and are audited."""

from __future__ import annotations

import time

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.engine import views
from interlock.engine.core import Engine
from interlock.engine.releases import cancel_release
from interlock.errors import NotFound
from tests.helpers import process_alive, running, wait_for, wait_release_end
from tests.support.driver import drive_release

PIPELINE = """\
version: 1
environments: [{name: staging}, {name: production}]
services:
  api:
    deploy:
      - name: migrate
        run: echo "migrate {{ service }} {{ version }} {{ environment }}" >> steps.log
        idempotent: true
      - name: roll-out
        run: >-
          echo "roll-out {{ service }} {{ version }} {{ environment }}
          $INTERLOCK_IDEMPOTENCY_KEY" >> steps.log
"""


def test_release_reaches_production_in_order(pilot):
    pilot.config(PIPELINE)
    release = pilot.release("api@1.4.2")
    done = drive_release(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    lines = (pilot.dir / "steps.log").read_text().splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["migrate", "api", "1.4.2", "staging"],
        ["roll-out", "api", "1.4.2", "staging"],
        ["migrate", "api", "1.4.2", "production"],
        ["roll-out", "api", "1.4.2", "production"],
    ]
    # The idempotency key is (deployment, step, attempt).
    assert lines[1].split()[4].endswith(":api/roll-out:1")
    with pilot.read() as tx:
        inventory = {(e.service, e.environment): e for e in tx.all_inventory()}
        deployments = tx.list_deployments(release_id=release.id)
    assert inventory[("api", "production")].version == "1.4.2"
    assert inventory[("api", "production")].release_id == release.id
    assert [d.state for d in deployments] == [DeploymentState.SUCCEEDED] * 2
    assert views.audit_verify(pilot.engine).ok


def test_audit_tells_the_story_in_order(pilot):
    pilot.config(PIPELINE)
    release = pilot.release("api@2.0.0", reason="PAY-9: fees")
    drive_release(pilot.engine, release.id)
    actions = [e.action for e in views.audit_events(pilot.engine, limit=1000)]
    assert actions[:2] == ["config.loaded", "release.created"]
    assert actions[-1] == "release.succeeded"
    staging = actions[
        actions.index("deployment.queued") : actions.index("deployment.succeeded") + 1
    ]
    assert staging == [
        "deployment.queued",
        "deployment.running",
        "step.started",
        "step.succeeded",
        "step.started",
        "step.succeeded",
        "service.deployed",
        "deployment.succeeded",
    ]
    created = views.audit_events(pilot.engine, actions=["release.created"])[0]
    assert created.actor == "alice"
    assert '"reason":"PAY-9: fees"' in created.body


def test_failing_step_is_retried_then_fails_the_release(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}, {name: production}]
        services:
          api:
            deploy:
              - name: flaky
                run: "echo try >> tries.log; echo boom >&2; exit 3"
                retries: 2
                backoff: 0.05
              - {name: after, run: "echo never >> after.log"}
        """)
    with running(pilot.engine):  # a real backoff between the tries: not driven
        release = pilot.release("api@1.0.0")
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.FAILED
    assert "api/flaky failed: exited with status 3" in done.error
    assert (pilot.dir / "tries.log").read_text().count("try") == 3
    assert not (pilot.dir / "after.log").exists()
    view = views.release_view(pilot.engine, release.id)
    [deployment] = view.deployments  # production never started
    flaky, after = deployment.nodes
    assert (flaky.state, after.state) == (NodeState.FAILED, NodeState.SKIPPED)
    attempts = deployment.attempts[flaky.id]
    assert [a.outcome for a in attempts] == ["failed", "failed", "failed"]
    assert all(a.exit_code == 3 for a in attempts)
    _, _, text, finished, _ = views.step_log(pilot.engine, flaky.id, 2)
    assert finished and "boom" in text
    actions = [e.action for e in views.audit_events(pilot.engine, limit=1000)]
    assert actions.count("step.retrying") == 2 and "release.failed" in actions


def test_timeout_kills_the_whole_process_group(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - name: hang
                timeout: 1s
                run: "(sleep 30; echo late > late.txt) & echo $! > child.pid; sleep 30"
        """)
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.FAILED and "timed out after 1s" in done.error
    child = int((pilot.dir / "child.pid").read_text())
    wait_for(lambda: not process_alive(child), 5, message="the background child to be killed")


def test_cancel_stops_a_running_step(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - {name: slow, run: "echo started > started.txt; sleep 30; echo done > done.txt"}
              - {name: next, run: "echo next > next.txt"}
        """)
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        wait_for(lambda: (pilot.dir / "started.txt").exists(), message="the step to start")
        begun = time.monotonic()
        cancel_release(pilot.engine, release.id, actor="bob", reason="wrong version")
        done = wait_release_end(pilot.engine, release.id)
        view = wait_for(
            lambda: (
                (v := views.release_view(pilot.engine, release.id))
                and v.deployments[0].deployment.finished_at
                and v
            ),
            message="the deployment to end",
        )
    assert time.monotonic() - begun < 10
    assert done.state is ReleaseState.CANCELLED
    assert "cancelled by bob: wrong version" in done.error
    slow, following = view.deployments[0].nodes
    assert (slow.state, following.state) == (NodeState.CANCELLED, NodeState.CANCELLED)
    assert view.deployments[0].deployment.state is DeploymentState.CANCELLED
    assert not (pilot.dir / "done.txt").exists() and not (pilot.dir / "next.txt").exists()


def test_logs_are_readable_while_the_step_runs(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - name: chatty
                run: "echo first-$((1)); while [ ! -f go ]; do sleep 0.02; done; echo second-$((2))"
        """)
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")

        def first_line():
            view = views.release_view(pilot.engine, release.id)
            if not view.deployments or not view.deployments[0].nodes:
                return None
            node = view.deployments[0].nodes[0]
            if node.attempt == 0:
                return None
            _, _, text, finished, _ = views.step_log(pilot.engine, node.id)
            return (text, finished) if "first-1" in text else None

        text, finished = wait_for(first_line, 5, message="the first line in the log")
        assert not finished and "second-2" not in text
        (pilot.dir / "go").touch()  # the step goes on
        wait_release_end(pilot.engine, release.id)
    node = views.release_view(pilot.engine, release.id).deployments[0].nodes[0]
    _, _, text, finished, _ = views.step_log(pilot.engine, node.id)
    assert finished and text.index("first-1") < text.index("second-2")
    assert text.count("first-1") == 1


def test_a_release_keeps_its_plan_when_the_config_changes(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}, {name: production}]
        services:
          api:
            deploy:
              - {name: wait, run: "while [ ! -f go ]; do sleep 0.05; done; echo v1 >> out.log"}
        """)
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        pilot.config("""\
            version: 1
            environments: [{name: staging}]
            services:
              api:
                deploy:
                  - {name: other, run: "echo v2 >> out.log"}
            """)
        (pilot.dir / "go").touch()
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED and done.config_version == 1
    assert (pilot.dir / "out.log").read_text().split() == ["v1", "v1"]
    assert pilot.configs.active().version == 2


def test_invalid_config_is_refused_and_the_old_one_stays(pilot):
    import pytest

    from interlock.errors import ConfigError

    pilot.config(PIPELINE)
    (pilot.dir / "interlock.yaml").write_text("version: 1\nenvironments: []\n")
    with pytest.raises(ConfigError):
        pilot.configs.load_file(pilot.dir / "interlock.yaml", actor="tester")
    assert pilot.configs.active().version == 1
    [rejected] = views.audit_events(pilot.engine, actions=["config.rejected"])
    assert rejected.actor == "tester"


def test_every_engine_on_the_database_reads_the_config_a_server_loaded(pilot):
    """A worker or a restarted server owns its config holder: nothing has to attach one."""
    worker = Engine(pilot.engine.db, settings=pilot.engine.settings)
    assert worker.configs.loaded() is None
    with pytest.raises(NotFound, match="no configuration has been loaded"):
        worker.configs.active()
    pilot.config(PIPELINE)
    assert worker.configs.active().version == 1
    assert [e.name for e in worker.configs.active().config.environments] == [
        "staging",
        "production",
    ]
    worker.configs.known("production")
    with pytest.raises(NotFound, match="no environment named 'prod'"):
        worker.configs.known("prod")


def test_same_service_and_environment_run_one_at_a_time(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - name: critical
                run: "mkdir busy || exit 9; echo {{ version }} >> order.log; sleep 0.3; rmdir busy"
        """)
    with running(pilot.engine, workers=4):
        releases = [pilot.release(f"api@1.0.{i}") for i in range(4)]
        finished = [wait_release_end(pilot.engine, r.id) for r in releases]
    assert all(r.state is ReleaseState.SUCCEEDED for r in finished)
    assert (pilot.dir / "order.log").read_text().split() == [f"1.0.{i}" for i in range(4)]
    queued = views.audit_events(pilot.engine, actions=["deployment.queued"])
    assert len(queued) == 4


def test_big_output_is_capped_with_a_marker_and_keeps_its_end(pilot):
    pilot.engine.settings.log_limit = 4096
    pilot.config("""\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - name: noisy
                run: "seq 1 20000; echo THE-END-OF-IT"
        """)
    done = drive_release(pilot.engine, pilot.release("api@1.0.0").id)
    assert done.state is ReleaseState.SUCCEEDED
    node = views.release_view(pilot.engine, done.id).deployments[0].nodes[0]
    _, _, text, finished, truncated = views.step_log(pilot.engine, node.id)
    assert finished and truncated
    assert text.startswith("$ seq 1 20000") and "\n1\n2\n3\n" in text
    assert "[interlock: output truncated:" in text
    assert text.rstrip().endswith("THE-END-OF-IT")
    assert len(text.encode()) < 4096 + 64 * 1024 + 500
