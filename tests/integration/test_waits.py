"""Every wait of a release explained (engine/waits.py): on what, since when, who can move it.

The engine runs in the test thread (EngineDriver) on a manual clock, on SQLite and
PostgreSQL; what the API, `release show`, `release watch` and the web page print is
this query's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from interlock.domain.states import DeploymentState, NodeState, ReleaseState
from interlock.domain.waits import (
    ApprovalWait,
    AttentionWait,
    CheckWait,
    FreezeWait,
    ManualWait,
    ScheduledWait,
    WindowWait,
)
from interlock.engine import approvals, runbooks, views, waits
from interlock.engine.access import Access
from interlock.engine.approval_views import pending_for
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.identity import Identity, Principal
from interlock.engine.resolve import resolve
from interlock.engine.waits import release_waits
from interlock.errors import InvalidInput
from tests.conftest import FAST
from tests.integration.conftest import Pilot
from tests.support.driver import EngineDriver

THURSDAY = datetime(2026, 3, 26, 16, 30, tzinfo=UTC)  # 17:30 in Berlin


@pytest.fixture
def clocked(db, tmp_path) -> Iterator[tuple[Pilot, ManualClock]]:
    clock = ManualClock(THURSDAY)
    engine = Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__))
    yield Pilot(engine, tmp_path), clock


def person(name: str, *roles: str) -> Principal:
    return Principal(name, "user", frozenset(roles), frozenset())


def waits_of(pilot: Pilot, release_id: int) -> list:
    return release_waits(
        pilot.engine, Access(pilot.configs), views.release_view(pilot.engine, release_id)
    )


def test_waits_of_a_release_by_its_id_as_a_message_renders_them(clocked):
    pilot, _ = clocked
    pilot.config(WINDOWS)
    release = pilot.release("web@3.0", scheduled_at=THURSDAY + timedelta(hours=2))
    [wait] = waits.waits_of(pilot.engine, Access(pilot.configs), release.id)
    assert wait.as_dict() == {
        "kind": "scheduled",
        "release": release.id,
        "deployment": None,
        "environment": None,
        "summary": "scheduled: it starts at 2026-03-26T18:30:00+00:00",
        "step_id": None,
        "step": None,
        "since": THURSDAY.isoformat(),
        "starts_at": (THURSDAY + timedelta(hours=2)).isoformat(),
    }


PEOPLE = """\
version: 1
roles:
  release-managers: [alice, bob, rita]
  dba: [dora, dan]
permissions:
  - {role: release-managers, allow: [approve]}
  - {user: dora, allow: [read, runbook.sign]}
  - {user: dan, allow: [read]}
environments:
  - name: production
    gates:
      before:
        - approval:
            rules: [{role: release-managers, count: 2}]
            expires: 1h
services:
  api:
    deploy:
      - name: migrate
        manual: {instructions: "Run the schema migration", role: dba}
      - {name: maintenance, runbook: vacuum}
      - {name: roll-out, run: "echo api"}
runbooks:
  vacuum:
    steps:
      - {name: prepare, run: "echo preparing"}
      - name: confirm
        manual: {instructions: "Check the table sizes", role: dba}
"""


def test_approval_then_manual_steps_say_who_can_act_and_wait_on_them(clocked):
    pilot, clock = clocked
    pilot.config(PEOPLE)
    identity = Identity(pilot.engine)
    for name in ("alice", "bob", "rita", "dora", "dan"):
        identity.add_user(actor="test", name=name, kind="user")
    access = Access(pilot.configs)
    driver = EngineDriver(pilot.engine)
    release = pilot.release("api@1.0")  # by alice: she may not approve her own release
    driver.run_until_idle()

    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, ApprovalWait)
    assert (wait.environment, wait.gate, wait.since) == ("production", "approval", THURSDAY)
    [rule] = wait.rules
    assert (rule.rule, rule.missing, rule.given_by) == ("2 from role release-managers", 2, ())
    assert rule.can_clear == ("bob", "rita")
    assert wait.expires_at is None and wait.approvals_last == 3600

    clock.advance(60)
    approvals.give(
        pilot.engine,
        access,
        person("bob", "release-managers"),
        release_id=release.id,
        environment=None,
        gate=None,
        decision="approve",
        comment="diff read",
    )
    [wait] = waits_of(pilot, release.id)
    [rule] = wait.rules
    [given] = rule.given_by
    approved_at = THURSDAY + timedelta(seconds=60)
    assert (given.by, given.at, given.comment) == ("bob", approved_at, "diff read")
    assert given.expires_at == approved_at + timedelta(hours=1)
    assert wait.expires_at == approved_at + timedelta(hours=1)
    assert (rule.missing, rule.can_clear) == (1, ("rita",))
    assert "1 more from rita; approved so far by bob" in wait.summary
    as_json = wait.as_dict()
    assert as_json["kind"] == "approval"
    assert as_json["rules"][0]["given_by"][0]["at"] == approved_at.isoformat()

    approvals.give(
        pilot.engine,
        access,
        person("rita", "release-managers"),
        release_id=release.id,
        environment=None,
        gate=None,
        decision="approve",
        comment=None,
    )
    driver.run_until_idle()

    # A manual step of the pipeline: dba signs it, but only dora holds runbook.sign.
    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, ManualWait)
    deployment = views.release_view(pilot.engine, release.id).deployments[0].deployment
    assert (wait.step, wait.signer_kind, wait.signer) == ("api/migrate", "role", "dba")
    assert (wait.instructions, wait.can_sign, wait.run) == (
        "Run the schema migration",
        ("dora",),
        deployment.id,
    )
    assert wait.sign == f"interlock runbook sign {deployment.id} migrate"
    [mine] = [row for _, row in pending_for(pilot.engine, access, person("dora")) if row]
    assert (mine["kind"], mine["release"], mine["step"]) == ("manual", release.id, "api/migrate")
    assert mine["sign"] == wait.sign and mine["instructions"] == "Run the schema migration"
    assert [row for _, row in pending_for(pilot.engine, access, person("dan")) if row] == []
    assert [row for _, row in pending_for(pilot.engine, access, person("bob")) if row] == []

    runbooks.sign(
        pilot.engine, access, person("dora"), run_id=deployment.id, step="migrate", comment=None
    )
    driver.run_until_idle()

    # The pipeline's runbook step started a run; its manual step is the release's wait.
    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, ManualWait)
    [run] = [
        d
        for d in views.list_deployments(pilot.engine)
        if d.kind == "runbook" and d.state is DeploymentState.RUNNING
    ]
    assert (wait.step, wait.run, wait.runbook) == ("api/maintenance > confirm", run.id, "vacuum")
    assert wait.sign == f"interlock runbook sign {run.id} confirm"
    [mine] = [row for _, row in pending_for(pilot.engine, access, person("dora")) if row]
    assert (mine["release"], mine["run"], mine["runbook"]) == (release.id, run.id, "vacuum")

    runbooks.sign(pilot.engine, access, person("dora"), run_id=run.id, step="confirm", comment="ok")
    driver.run_until_idle()
    assert views.release_view(pilot.engine, release.id).release.state is ReleaseState.SUCCEEDED
    assert waits_of(pilot, release.id) == []
    assert [row for _, row in pending_for(pilot.engine, access, person("dora")) if row] == []


WINDOWS = """\
version: 1
environments:
  - name: staging
    gates:
      before:
        - window:
            timezone: Europe/Berlin
            allow: [{days: [mon, tue, wed, thu], from: "09:00", to: "16:00"}]
            freeze: [{from: 2026-03-20, to: 2026-03-27T12:00, reason: quarter close}]
  - name: production
    gates:
      before:
        - check: {run: "test -f ready.flag", interval: 30, timeout: 1h}
services:
  api: {deploy: [{name: roll-out, run: "echo deployed"}]}
  web: {deploy: [{name: roll-out, run: "echo deployed"}]}
"""


def test_a_freeze_then_a_closed_window_then_a_check_each_say_until_when(clocked):
    pilot, clock = clocked
    pilot.config(WINDOWS)
    driver = EngineDriver(pilot.engine)
    release = pilot.release("api@1.0")
    driver.run_until_idle()

    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, FreezeWait)
    until = datetime(2026, 3, 27, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    assert (wait.until, wait.reason, wait.set_by) == (until, "quarter close", "interlock.yaml")
    monday = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST: no window on Fridays
    assert wait.opens_at == monday
    assert wait.as_dict()["until"] == until.isoformat()
    assert (wait.config_version, wait.loaded_by) == (1, "tester")
    assert (
        "frozen until 2026-03-27T11:00:00+00:00: quarter close (set in interlock.yaml of "
        "config v1, loaded by tester)"
    ) in wait.summary
    assert "it looks again at 2026-03-30T07:00:00+00:00" in wait.summary

    # Friday noon: the freeze is over; the window stays closed until Monday.
    clock.set(until)
    driver.run_until_idle()
    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, WindowWait)
    assert wait.opens_at == monday
    assert "it opens at 2026-03-30T07:00:00+00:00" in wait.summary
    assert "the freeze (quarter close) ended at 2026-03-27T11:00:00+00:00" in wait.summary

    clock.set(datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    driver.run_until_idle()
    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, CheckWait)
    assert (wait.gate, wait.type, wait.tries) == ("check", "check", 1)
    assert wait.next_try == clock.now() + timedelta(seconds=30)
    assert wait.last
    assert wait.summary.startswith("production/check (check) try 1: not yet")
    driver.advance(30)
    [wait] = waits_of(pilot, release.id)
    assert wait.tries == 2 and wait.next_try == clock.now() + timedelta(seconds=30)

    (pilot.dir / "ready.flag").touch()
    driver.advance(30)
    assert views.release_view(pilot.engine, release.id).release.state is ReleaseState.SUCCEEDED
    assert waits_of(pilot, release.id) == []


def test_a_scheduled_release_waits_for_its_time_and_a_past_time_is_refused(clocked):
    pilot, clock = clocked
    pilot.config(WINDOWS)
    later = clock.now() + timedelta(days=1)
    release = pilot.release("web@2.0", scheduled_at=later)
    [wait] = waits_of(pilot, release.id)
    assert isinstance(wait, ScheduledWait) and wait.starts_at == later

    with pytest.raises(InvalidInput) as refused:
        pilot.release("web@2.1", scheduled_at=clock.now() - timedelta(hours=2))
    assert refused.value.extra["field"] == "at"
    assert "is in the past" in refused.value.detail
    assert "leave it out to start now" in refused.value.detail
    # A client whose clock runs a few seconds behind still means "now".
    started = pilot.release("web@2.2", scheduled_at=clock.now() - timedelta(seconds=5))
    assert started.state is ReleaseState.RUNNING and started.scheduled_at is None


PAUSE = """\
version: 1
environments: [{name: production, on_failure: pause}]
services:
  api:
    deploy: [{name: roll-out, run: "test ! -f fail-{{ version }}"}]
"""


def test_a_rollback_chosen_after_a_pause_runs_the_release_until_it_ends(clocked):
    pilot, _ = clocked
    pilot.config(PAUSE)
    driver = EngineDriver(pilot.engine)
    first = pilot.release("api@1")
    driver.run_until_idle()
    (pilot.dir / "fail-2").touch()
    second = pilot.release("api@2")
    driver.run_until_idle()
    view = views.release_view(pilot.engine, second.id)
    assert view.release.state is ReleaseState.NEEDS_ATTENTION
    [step] = view.deployments[0].nodes
    [wait] = waits_of(pilot, second.id)
    assert isinstance(wait, AttentionWait) and wait.step_id == step.id
    assert wait.resolve.startswith(f"interlock resolve {step.id} ")

    resolve(
        pilot.engine,
        Access(pilot.configs),
        person("olga", "admin"),
        step_id=step.id,
        action="rollback",
        reason="errors up",
    )
    # Nothing waits on a person while the rollback runs: the release runs again.
    view = views.release_view(pilot.engine, second.id)
    assert view.deployments[0].deployment.state is DeploymentState.ROLLING_BACK
    assert view.release.state is ReleaseState.RUNNING
    assert waits_of(pilot, second.id) == []
    driver.run_until_idle()
    view = views.release_view(pilot.engine, second.id)
    assert view.release.state is ReleaseState.FAILED
    assert view.deployments[0].deployment.state is DeploymentState.ROLLED_BACK
    assert [n.state for n in view.deployments[0].nodes if n.phase == "rollback"] == [
        NodeState.SUCCEEDED
    ]
    assert first.id != second.id
