"""Check, metric, soak, window and promotion gates, environment locks and queueing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from interlock.domain.states import NodeState, ReleaseState
from interlock.engine import environments, views
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.errors import Conflict
from tests.conftest import FAST
from tests.helpers import release_state, running, wait_for, wait_release_end
from tests.integration.conftest import Pilot
from tests.support.driver import EngineDriver


def _gate(pilot: Pilot, release_id: int, name: str):
    view = views.release_view(pilot.engine, release_id)
    for deployment in view.deployments:
        for node in deployment.nodes:
            if node.key == f"gate/{name}":
                return node, deployment.attempts.get(node.id, [])
    return None, []


@pytest.fixture
def clocked(db, tmp_path) -> Iterator[tuple[Pilot, ManualClock]]:
    clock = ManualClock(datetime(2026, 3, 26, 15, 0, tzinfo=UTC))  # a Thursday
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    yield Pilot(engine, tmp_path), clock


def test_a_check_waits_until_it_passes_and_keeps_every_try(clocked):
    pilot, _ = clocked
    pilot.config("""\
        version: 1
        environments:
          - name: staging
            gates:
              before:
                - check: {run: "test -f ready.flag", interval: 0.1, timeout: 30s}
        services:
          api: {deploy: [{name: roll-out, run: "echo go >> out.log"}]}
        """)
    driver = EngineDriver(pilot.engine)  # each 0.1 s of the clock runs the check again
    release = pilot.release("api@1.0.0")
    driver.run_until_idle()
    driver.advance(0.1)
    driver.advance(0.1)
    assert len(_gate(pilot, release.id, "check")[1]) == 3  # three tries of the check
    assert not (pilot.dir / "out.log").exists()
    (pilot.dir / "ready.flag").touch()
    driver.advance(0.1)
    done = release_state(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    node, attempts = _gate(pilot, release.id, "check")
    assert node.state is NodeState.SUCCEEDED
    outcomes = [a.outcome for a in attempts]
    assert outcomes[-1] == "passed" and set(outcomes[:-1]) == {"waiting"}


def test_a_check_that_never_passes_fails_the_gate_at_its_timeout(clocked):
    pilot, _ = clocked
    pilot.config("""\
        version: 1
        environments:
          - name: staging
            gates:
              before:
                - check: {http: {method: GET, url: "http://127.0.0.1:9/health"},
                          interval: 0.1, timeout: 1s}
        services:
          api: {deploy: [{name: roll-out, run: "echo go >> out.log"}]}
        """)
    driver = EngineDriver(pilot.engine)
    release = pilot.release("api@1.0.0")
    driver.run_until_idle()
    for _ in range(9):  # 0.9 s of tries: the gate still waits
        driver.advance(0.1)
    assert release_state(pilot.engine, release.id).finished_at is None
    driver.advance(0.1)
    driver.advance(0.1)  # past its timeout
    done = release_state(pilot.engine, release.id)
    assert done.state is ReleaseState.FAILED
    assert "gate gate/check failed: did not pass within 1s" in done.error
    assert not (pilot.dir / "out.log").exists()


def test_a_metric_gate_against_real_prometheus(pilot, prometheus_server):
    prometheus_server.exporter.set("api_error_ratio", 0.2)
    prometheus_server.wait_for_value("api_error_ratio", 0.2)
    pilot.config(f"""\
        version: 1
        environments:
          - name: production
            gates:
              after:
                - metric:
                    prometheus: {prometheus_server.url}
                    query: api_error_ratio
                    threshold: {{op: "<", value: 0.05}}
                    interval: 0.5s
                    timeout: 60s
        services:
          api: {{deploy: [{{name: roll-out, run: "true"}}]}}
        """)
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        wait_for(
            lambda: len(_gate(pilot, release.id, "metric")[1]) >= 2,
            20,
            message="two polls of the metric",
        )
        prometheus_server.exporter.set("api_error_ratio", 0.01)
        done = wait_release_end(pilot.engine, release.id, timeout=40)
    assert done.state is ReleaseState.SUCCEEDED
    node, attempts = _gate(pilot, release.id, "metric")
    assert node.result["value"] == pytest.approx(0.01)
    assert attempts[0].outcome == "waiting" and "0.2" in attempts[0].error


def test_soak_passes_after_its_duration_and_a_failed_check_ends_it(clocked):
    pilot, clock = clocked
    pilot.config("""\
        version: 1
        environments:
          - name: production
            gates:
              after:
                - soak:
                    duration: 10m
                    interval: 1m
                    checks: [{check: {run: "test ! -f broken.flag"}}]
        services:
          api: {deploy: [{name: roll-out, run: "true"}]}
        """)
    # Driven in the test thread: each minute of the clock runs what became due, no waiting.
    driver = EngineDriver(pilot.engine)
    first = pilot.release("api@1.0.0")
    driver.run_until_idle()
    soak = _gate(pilot, first.id, "soak")[0]
    assert soak.state is NodeState.READY and soak.attempt >= 1
    for _ in range(9):
        driver.advance(60)
        assert release_state(pilot.engine, first.id).finished_at is None
    driver.advance(60)
    assert release_state(pilot.engine, first.id).state is ReleaseState.SUCCEEDED

    second = pilot.release("api@1.0.1")
    driver.run_until_idle()
    driver.advance(60)
    (pilot.dir / "broken.flag").touch()
    driver.advance(60)
    done = release_state(pilot.engine, second.id)
    assert done.state is ReleaseState.FAILED
    assert "a check failed during the soak" in done.error


def test_a_closed_window_waits_and_opens_by_itself(clocked):
    pilot, clock = clocked
    pilot.config("""\
        version: 1
        environments:
          - name: production
            gates:
              before:
                - window:
                    timezone: Europe/Berlin
                    allow: [{days: [mon, tue, wed, thu], from: "09:00", to: "16:00"}]
        services:
          api: {deploy: [{name: roll-out, run: "echo deployed >> out.log"}]}
        """)
    clock.set(datetime(2026, 3, 26, 16, 30, tzinfo=UTC))  # Thursday 17:30 in Berlin
    with running(pilot.engine):
        release = pilot.release("api@1.0.0")
        node = wait_for(
            lambda: (
                (n := _gate(pilot, release.id, "window")[0])
                and n.attempt >= 1
                and n.state is NodeState.READY
                and n
            ),
            message="the window to wait",
        )
        # Monday 09:00 in Berlin is 07:00 UTC: summer time began on Sunday 29 March.
        assert node.not_before == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
        assert node.state is NodeState.READY
        clock.set(datetime(2026, 3, 30, 6, 59, tzinfo=UTC))
        assert views.release_view(pilot.engine, release.id).release.finished_at is None
        clock.set(datetime(2026, 3, 30, 7, 0, 1, tzinfo=UTC))
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED


def test_break_glass_override_is_audited_and_flagged(clocked):
    from interlock.engine.access import Access
    from interlock.engine.identity import Principal

    pilot, clock = clocked
    pilot.config("""\
        version: 1
        environments:
          - name: production
            gates:
              before:
                - window:
                    timezone: UTC
                    freeze: [{from: 2026-03-20, to: 2026-04-05, reason: quarter close}]
        services:
          api: {deploy: [{name: hotfix, run: "echo fixed >> out.log"}]}
        """)
    oncall = Principal("olga", "user", frozenset({"admin"}), frozenset())
    with running(pilot.engine):
        release = pilot.release("api@1.0.1")
        wait_for(
            lambda: (
                (n := _gate(pilot, release.id, "window")[0])
                and n.attempt >= 1
                and n.state is NodeState.READY
            ),
            message="the freeze to hold the release",
        )
        override = environments.override_window(
            pilot.engine,
            Access(pilot.configs),
            oncall,
            release_id=release.id,
            environment="production",
            reason="INC-7: payments down",
        )
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    node, _ = _gate(pilot, release.id, "window")
    assert node.result["by"] == "olga" and node.result["override"] == override.id
    assert [o.id for o in environments.overrides(pilot.engine, unreviewed=True)] == [override.id]
    [event] = views.audit_events(pilot.engine, actions=["window.overridden"])
    assert '"flagged_for_review":true' in event.body and event.actor == "olga"
    with pytest.raises(Exception, match="someone other"):
        environments.review_override(pilot.engine, oncall, override_id=override.id, comment="ok")
    reviewer = Principal("rev", "user", frozenset({"admin"}), frozenset())
    environments.review_override(
        pilot.engine, reviewer, override_id=override.id, comment="justified by INC-7"
    )
    assert environments.overrides(pilot.engine, unreviewed=True) == []


def test_promotion_no_skipping_staging(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: staging}, {name: production}]
        services:
          api: {deploy: [{name: roll-out, run: "echo {{ environment }} >> out.log"}]}
        """)
    with pytest.raises(Conflict, match="never succeeded in staging"):
        pilot.release("api@2.0.0", start="production")
    with running(pilot.engine):
        staged = pilot.release("api@2.0.0", until="staging")
        assert wait_release_end(pilot.engine, staged.id).state is ReleaseState.SUCCEEDED
        promoted = pilot.release("api@2.0.0", start="production")
        assert wait_release_end(pilot.engine, promoted.id).state is ReleaseState.SUCCEEDED
    node, _ = _gate(pilot, promoted.id, "promotion")
    assert node.state is NodeState.SUCCEEDED
    assert (pilot.dir / "out.log").read_text().split() == ["staging", "production"]


def test_a_locked_environment_holds_deployments_until_unlocked(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: production}]
        services:
          api: {deploy: [{name: roll-out, run: "echo {{ version }} >> out.log"}]}
        """)
    environments.lock(
        pilot.engine, environment="production", actor="carol", reason="DB maintenance"
    )
    with pytest.raises(Conflict, match="already locked by carol"):
        environments.lock(pilot.engine, environment="production", actor="x", reason="y")
    driver = EngineDriver(pilot.engine)  # idle means held: no sleep to wait it out
    release = pilot.release("api@1.0.0")
    driver.run_until_idle()
    assert not (pilot.dir / "out.log").exists()
    assert (
        views.release_view(pilot.engine, release.id).deployments[0].deployment.state.value
        == "queued"
    )
    environments.unlock(pilot.engine, environment="production", actor="carol")
    driver.run_until_idle()
    assert release_state(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
    actions = [e.action for e in views.audit_events(pilot.engine, limit=500)]
    assert "environment.locked" in actions and "environment.unlocked" in actions


def test_twenty_releases_of_one_service_run_one_at_a_time(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: production}]
        services:
          api:
            deploy:
              - name: roll-out
                run: "mkdir busy || exit 9; echo {{ version }} >> order.log; sleep 0.05; rmdir busy"
        """)
    with running(pilot.engine, workers=4):
        releases = [pilot.release(f"api@1.0.{i}") for i in range(20)]
        finished = [wait_release_end(pilot.engine, r.id, timeout=60) for r in releases]
    assert {r.state for r in finished} == {ReleaseState.SUCCEEDED}
    assert (pilot.dir / "order.log").read_text().split() == [f"1.0.{i}" for i in range(20)]


def test_refuse_instead_of_queue(pilot):
    pilot.config("""\
        version: 1
        environments: [{name: production, concurrency: refuse}]
        services:
          api: {deploy: [{name: roll-out, run: "sleep 0.5"}]}
        """)
    with running(pilot.engine):
        first = pilot.release("api@1.0.0")
        second = pilot.release("api@1.0.1")
        done = wait_release_end(pilot.engine, second.id)
        assert wait_release_end(pilot.engine, first.id).state is ReleaseState.SUCCEEDED
    assert done.state is ReleaseState.FAILED
    assert "refuses to queue" in done.error
