"""Recovery: automatic rollback, incidents, manual rollback, resolving, blocking, runbooks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.engine import artifacts, incidents, runbooks, views
from interlock.engine.access import Access
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.engine.resolve import resolve
from interlock.engine.rollback_service import rollback_service
from interlock.errors import Conflict, Forbidden
from tests.conftest import FAST
from tests.helpers import release_state, running, wait_for, wait_release_end
from tests.integration.conftest import Pilot
from tests.support.driver import EngineDriver

PROD = """\
version: 1
environments:
  - name: production
    production: true
    on_failure: {on_failure}
    deadline: {deadline}
services:
  api:
    deploy:
      - name: roll-out
        run: >-
          echo {{{{ version }}}} > current.txt; echo "roll-out {{{{ version }}}}" >> story.log;
          while [ -f slow-{{{{ version }}}} ]; do sleep 0.1; done; test ! -f fail-{{{{ version }}}}
        idempotent: true
"""
ROOT = Principal("olga", "user", frozenset({"admin"}), frozenset())


def rollback_api(pilot, to_version: str | None = None, reason: str = "INC: errors up", **options):
    """Roll api back in production as ROOT (``interlock rollback api --env production``)."""
    return rollback_service(
        pilot.engine,
        Access(pilot.configs),
        ROOT,
        service="api",
        environment="production",
        to_version=to_version,
        reason=reason,
        **options,
    )


def prod(pilot, on_failure: str = "rollback", deadline: str = "1h") -> None:
    pilot.config(PROD.format(on_failure=on_failure, deadline=deadline))


def deploy(pilot, version: str):
    return wait_release_end(pilot.engine, pilot.release(f"api@{version}").id)


def current(pilot) -> str:
    return (pilot.dir / "current.txt").read_text().strip()


def test_a_failing_step_in_production_rolls_back_and_opens_an_incident(pilot):
    prod(pilot)
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        assert deploy(pilot, "1").state is ReleaseState.SUCCEEDED
        done = deploy(pilot, "2")
    assert done.state is ReleaseState.FAILED
    assert current(pilot) == "1"  # the target shows the previous version again
    deployment = views.release_view(pilot.engine, done.id).deployments[0].deployment
    assert deployment.state is DeploymentState.ROLLED_BACK
    assert "rolled back: api is back on 1" in done.error
    [incident] = incidents.incidents(pilot.engine, state="open")
    assert incident.deployment_id == deployment.id and incident.release_id == done.id
    assert incident.service == "api" and incident.environment == "production"
    with pilot.read() as tx:
        assert tx.inventory_entry("api", "production").version == "1"
    story = [
        (e.action, e.object_type)
        for e in views.audit_events(pilot.engine, limit=1000)
        if e.seq > views.audit_events(pilot.engine, actions=["release.created"])[1].seq - 1
    ]
    actions = [a for a, _ in story]
    expected = [
        "release.created",
        "deployment.queued",
        "deployment.running",
        "step.started",
        "step.failed",
        "incident.opened",
        "deployment.rolling_back",
        "step.started",
        "step.succeeded",
        "service.rolled_back",
        "deployment.rolled_back",
        "release.failed",
    ]
    assert [a for a in actions if a in expected] == expected


def test_pause_then_a_person_decides(pilot):
    prod(pilot, on_failure="pause")
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        deploy(pilot, "1")
        release = pilot.release("api@2")
        view = wait_for(
            lambda: (
                (v := views.release_view(pilot.engine, release.id)).release.state
                is ReleaseState.NEEDS_ATTENTION
                and v
            )
        )
        step = view.deployments[0].nodes[0]
        assert step.state is NodeState.NEEDS_ATTENTION and "paused" in step.error
        (pilot.dir / "fail-2").unlink()
        resolve(
            pilot.engine,
            Access(pilot.configs),
            ROOT,
            step_id=step.id,
            action="retry",
            reason="the disk was full; freed it",
        )
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
        (pilot.dir / "fail-3").touch()
        third = pilot.release("api@3")
        view = wait_for(
            lambda: (
                (v := views.release_view(pilot.engine, third.id)).release.state
                is ReleaseState.NEEDS_ATTENTION
                and v
            )
        )
        resolve(
            pilot.engine,
            Access(pilot.configs),
            ROOT,
            step_id=view.deployments[0].nodes[0].id,
            action="rollback",
            reason="bad build, going back",
        )
        done = wait_release_end(pilot.engine, third.id)
    assert done.state is ReleaseState.FAILED and current(pilot) == "2"
    resolved = views.audit_events(pilot.engine, actions=["step.resolved"])
    assert [e.actor for e in resolved] == ["olga", "olga"]


@pytest.fixture
def clocked(db, tmp_path) -> tuple[Pilot, ManualClock]:
    """A pilot whose engine reads a manual clock: a deadline passes when the test says."""
    clock = ManualClock(datetime(2026, 3, 26, 15, 0, tzinfo=UTC))
    return Pilot(Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__)), tmp_path), clock


def test_the_deadline_aborts_and_rolls_back(clocked):
    pilot, clock = clocked
    prod(pilot, deadline="2s")
    (pilot.dir / "slow-2").touch()
    with running(pilot.engine):
        deploy(pilot, "1")
        release = pilot.release("api@2")
        wait_for(lambda: "roll-out 2" in (pilot.dir / "story.log").read_text())
        clock.advance(1.9)  # within the deadline: a tick leaves the step running
        EngineDriver(pilot.engine).tick()
        assert release_state(pilot.engine, release.id).finished_at is None
        clock.advance(0.1)  # the deadline passes while the step still runs
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.FAILED
    assert "deadline of 2s passed" in done.error and current(pilot) == "1"


def test_manual_rollback_to_the_last_good_version(pilot):
    prod(pilot)
    with running(pilot.engine):
        deploy(pilot, "1")
        deploy(pilot, "2")
        opened = incidents.open_incident(
            pilot.engine,
            actor="carol",
            service="api",
            environment="production",
            summary="errors up",
        )
        assert opened.deployment_id is not None  # the latest deployment of api there
        rehearsal = rollback_api(pilot, reason="rehearsal", dry_run=True)
        assert rehearsal["from"] == "2" and rehearsal["to"] == "1"
        assert rehearsal["steps"][0]["runs"].startswith("$ echo 1 > current.txt")
        assert current(pilot) == "2"  # a dry run changes nothing
        started = rollback_api(pilot, reason="INC: errors up")
        done = wait_release_end(pilot.engine, started["release"])
    assert done.state is ReleaseState.SUCCEEDED and done.kind == "rollback"
    assert current(pilot) == "1"
    view = views.release_view(pilot.engine, done.id)
    assert view.deployments[0].deployment.kind == "rollback"
    resolved = incidents.incidents(pilot.engine, state="resolved")[0]
    assert resolved.resolution == "rollback" and resolved.resolved_by_deployment == (
        view.deployments[0].deployment.id
    )
    with pytest.raises(Conflict, match="already runs"):
        rollback_api(pilot, to_version="1", reason="again")


def test_a_blocked_version_cannot_be_released_and_stops_in_flight(pilot):
    prod(pilot)
    (pilot.dir / "slow-2").touch()
    with running(pilot.engine):
        deploy(pilot, "1")
        release = pilot.release("api@2")
        wait_for(lambda: "roll-out 2" in (pilot.dir / "story.log").read_text())
        artifacts.block(
            pilot.engine,
            actor="carol",
            service="api",
            version="2",
            reason="CVE-2026-1 in the image",
        )
        done = wait_release_end(pilot.engine, release.id)
        with pytest.raises(Conflict, match="api@2 is blocked: CVE-2026-1"):
            pilot.release("api@2")
    assert done.state is ReleaseState.FAILED and "blocked by carol" in done.error
    assert current(pilot) == "1"


def test_a_manual_step_is_signed_off_by_its_role_only(pilot):
    pilot.config("""\
        version: 1
        roles: {dba: [dana]}
        environments: [{name: production}]
        runbooks:
          failover:
            params: {region: {required: true}}
            steps:
              - {name: announce, run: "echo failing over {{ params.region }} >> rb.log"}
              - name: check-replica
                manual: {instructions: "Check replica lag is under 5s", role: dba}
              - {name: promote, run: "echo promoted {{ params.region }} >> rb.log"}
        services:
          api: {deploy: [{name: a, run: "true"}]}
        """)
    access = Access(pilot.configs)
    with running(pilot.engine):
        run = runbooks.run(pilot.engine, access, ROOT, name="failover", params={"region": "eu-1"})
        step = wait_for(
            lambda: next(
                (
                    n
                    for n in views.deployment_view(pilot.engine, run.id).nodes
                    if n.name == "check-replica" and n.state is NodeState.WAITING
                ),
                None,
            )
        )
        outsider = Principal("sam", "user", frozenset({"admin"}), frozenset())
        with pytest.raises(Forbidden, match="sam is not in role dba"):
            runbooks.sign(
                pilot.engine, access, outsider, run_id=run.id, step=step.name, comment="looks fine"
            )
        dana = Principal("dana", "user", frozenset({"admin"}), frozenset())
        runbooks.sign(
            pilot.engine, access, dana, run_id=run.id, step="check-replica", comment="lag 1s"
        )
        finished = wait_for(
            lambda: (d := views.deployment_view(pilot.engine, run.id).deployment).finished_at and d
        )
    assert finished.state is DeploymentState.SUCCEEDED
    assert (pilot.dir / "rb.log").read_text().split("\n")[:2] == [
        "failing over eu-1",
        "promoted eu-1",
    ]
    [signed] = views.audit_events(pilot.engine, actions=["step.signed_off"])
    assert signed.actor == "dana" and signed.body.count("lag 1s") == 1


def test_a_pipeline_step_runs_a_runbook_and_waits_for_it(pilot):
    pilot.config("""\
        version: 1
        roles: {dba: [dana]}
        environments: [{name: production}]
        runbooks:
          migrate:
            params: {target: {default: latest}}
            steps:
              - {name: backup, run: "echo backup >> rb.log"}
              - name: approve-schema
                manual: {instructions: "Read the migration", role: dba}
        services:
          api:
            deploy:
              - {name: migrate, runbook: migrate, with: {target: v9}}
              - {name: roll-out, run: "echo roll-out >> rb.log"}
        """)
    access = Access(pilot.configs)
    with running(pilot.engine):
        release = pilot.release("api@9")
        child = wait_for(lambda: next(iter(runbooks.runs(pilot.engine)), None))
        assert child.params == {"target": "v9"} and child.parent_node_id is not None
        wait_for(
            lambda: any(
                n.state is NodeState.WAITING
                for n in views.deployment_view(pilot.engine, child.id).nodes
            )
        )
        assert not (pilot.dir / "rb.log").read_text().count("roll-out")
        dana = Principal("dana", "user", frozenset({"admin"}), frozenset())
        runbooks.sign(
            pilot.engine, access, dana, run_id=child.id, step="approve-schema", comment="ok"
        )
        done = wait_release_end(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED
    assert (pilot.dir / "rb.log").read_text().split() == ["backup", "roll-out"]


def test_a_fixing_deployment_resolves_the_incident(pilot):
    prod(pilot)
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        deploy(pilot, "1")
        deploy(pilot, "2")
        [incident] = incidents.incidents(pilot.engine, state="open")
        fixed = deploy(pilot, "3")
    assert fixed.state is ReleaseState.SUCCEEDED
    resolved = incidents.incidents(pilot.engine, state="resolved")
    assert [i.id for i in resolved] == [incident.id]
    assert resolved[0].resolution == "fix" and resolved[0].resolved_at >= resolved[0].opened_at


def test_cancelling_during_a_rollback_lets_the_rollback_finish(pilot):
    from interlock.engine.releases import cancel_release

    prod(pilot)
    (pilot.dir / "fail-2").touch()
    with running(pilot.engine):
        deploy(pilot, "1")
        (pilot.dir / "slow-1").touch()  # the rollback to 1 takes its time
        release = pilot.release("api@2")
        wait_for(
            lambda: (
                (v := views.release_view(pilot.engine, release.id)).deployments
                and v.deployments[0].deployment.state is DeploymentState.ROLLING_BACK
            )
        )
        cancel_release(pilot.engine, release.id, actor="bob", reason="stop it all")
        (pilot.dir / "slow-1").unlink()
        deployment = wait_for(
            lambda: (
                (
                    d := views.release_view(pilot.engine, release.id).deployments[0].deployment
                ).finished_at
                and d
            ),
            40,
        )
    assert deployment.state is DeploymentState.ROLLED_BACK and current(pilot) == "1"
    assert views.release_view(pilot.engine, release.id).release.state is ReleaseState.CANCELLED


def test_a_rollback_goes_only_to_a_version_that_ran_there(pilot):
    from interlock.errors import InvalidInput

    prod(pilot)
    with running(pilot.engine):
        deploy(pilot, "1")
        deploy(pilot, "2")
    with pytest.raises(Conflict, match="api@9.9.9 never ran successfully in production"):
        rollback_api(pilot, to_version="9.9.9", reason="x")
    with pytest.raises(InvalidInput, match="not a valid version"):
        rollback_api(pilot, to_version="1;$(id)", reason="x")


def test_the_deadline_does_not_count_waiting_for_an_approval(clocked):
    from interlock.engine import approvals

    pilot, clock = clocked

    pilot.config("""\
        version: 1
        roles: {leads: [lena]}
        environments:
          - name: production
            production: true
            deadline: 1s
            gates: {before: [{approval: {rules: [{role: leads}]}}]}
        services:
          api: {deploy: [{name: roll-out, run: "echo {{ version }} > current.txt"}]}
        """)
    from interlock.engine.identity import Identity

    identity = Identity(pilot.engine)  # an approver is a stored user with the permission
    identity.add_user(actor="test", name="lena")
    identity.set_membership(actor="test", kind="role", group="admin", user="lena", member=True)
    lena = Principal("lena", "user", frozenset({"admin", "leads"}), frozenset())
    driver = EngineDriver(pilot.engine)  # the engine runs in the test thread
    release = pilot.release("api@1")
    driver.run_until_idle()
    driver.advance(2.5)  # longer than the deadline, waiting for the approval
    assert release_state(pilot.engine, release.id).finished_at is None
    approvals.give(
        pilot.engine,
        Access(pilot.configs),
        lena,
        release_id=release.id,
        environment="production",
        gate=None,
        decision="approve",
        comment="ok",
    )
    driver.run_until_idle()
    done = release_state(pilot.engine, release.id)
    assert done.state is ReleaseState.SUCCEEDED and current(pilot) == "1"
    assert incidents.incidents(pilot.engine) == []


def _paused(pilot, version: str):
    release = pilot.release(f"api@{version}")
    view = wait_for(
        lambda: (
            (v := views.release_view(pilot.engine, release.id)).release.state
            is ReleaseState.NEEDS_ATTENTION
            and v
        )
    )
    return release, view.deployments[0].nodes[0]


def test_skip_counts_the_step_as_done_and_fail_ends_without_rolling_back(pilot):
    prod(pilot, on_failure="pause")
    access = Access(pilot.configs)
    with running(pilot.engine):
        assert deploy(pilot, "1").state is ReleaseState.SUCCEEDED
        # The step failed after doing its work (the person checked): skip counts it as done.
        (pilot.dir / "fail-2").touch()
        second, step = _paused(pilot, "2")
        resolve(
            pilot.engine, access, ROOT, step_id=step.id, action="skip", reason="checked: it is out"
        )
        assert wait_release_end(pilot.engine, second.id).state is ReleaseState.SUCCEEDED
        with pilot.read() as tx:
            assert tx.inventory_entry("api", "production").version == "2"
        # Fail: the deployment ends failed, nothing rolls back, the target keeps what it has.
        (pilot.dir / "fail-3").touch()
        third, step = _paused(pilot, "3")
        resolve(pilot.engine, access, ROOT, step_id=step.id, action="fail", reason="leave it")
        done = wait_release_end(pilot.engine, third.id)
        with pytest.raises(Conflict):  # a decided step is not decided again
            resolve(pilot.engine, access, ROOT, step_id=step.id, action="retry", reason="again")
    assert done.state is ReleaseState.FAILED
    deployment = views.release_view(pilot.engine, third.id).deployments[0]
    assert deployment.deployment.state is DeploymentState.FAILED
    assert current(pilot) == "3"  # no rollback ran: the step's own work stays
    assert "roll-out 2" in (pilot.dir / "story.log").read_text()
    with pilot.read() as tx:
        assert tx.inventory_entry("api", "production").version == "2"
    decided = views.audit_events(pilot.engine, actions=["step.resolved"])
    assert [(e.actor, e.object_type) for e in decided] == [("olga", "step"), ("olga", "step")]
    assert "rolled_back" not in {
        e.action.split(".")[-1]
        for e in views.audit_events(pilot.engine, object_type="deployment", limit=1000)
    }
