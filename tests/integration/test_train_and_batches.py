"""One approval clears a whole train; the scheduler's bounded batches leave nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.domain.records import Item
from interlock.domain.states import ReleaseState
from interlock.engine import scheduler
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.releases import create_release
from interlock.engine.scheduler import TASKS
from tests.conftest import FAST
from tests.helpers import release_state, wait_release_end
from tests.integration.conftest import Pilot
from tests.integration.test_approvals import approve, release, waiting_in_production
from tests.support.api import Api

TRAIN = """\
version: 1
teams: {payments: [dave]}
roles: {release-managers: [alice]}
permissions:
  - {team: payments, allow: [release.create], services: owned}
  - {role: release-managers, allow: [approve]}
environments:
  - name: production
    gates:
      before:
        - approval: {rules: [{role: release-managers}]}
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "echo api {{ version }} >> out.log"}]}
  web: {owner: payments, deploy: [{name: roll-out, run: "echo web {{ version }} >> out.log"}]}
  db:
    owner: payments
    deploy: [{name: roll-out, run: "echo db {{ version }} >> out.log"}]
"""


def test_one_approval_clears_the_whole_train(pilot):
    path = pilot.config(TRAIN)
    api = Api(pilot.engine, pilot.configs, path, driven=True).start()
    try:
        dave, alice = api.user("dave"), api.user("alice")
        made = release(dave, "api@2.0", "web@3.0", "db@4.0")
        gate = waiting_in_production(dave, made["id"])
        assert gate["rules"][0]["missing"] == 1
        assert approve(alice, made["id"]).json()["gate_state"] == "succeeded"
        done = wait_release_end(pilot.engine, made["id"])
    finally:
        api.stop()
    assert done.state is ReleaseState.SUCCEEDED
    assert sorted((pilot.dir / "out.log").read_text().splitlines()) == [
        "api 2.0",
        "db 4.0",
        "web 3.0",
    ]


def test_more_due_releases_than_one_batch_all_start(db, tmp_path, monkeypatch):
    # The scheduler starts at most a batch of due releases per tick: 2.3 batches take
    # three ticks. A batch of 10 (100 in production) keeps the test short.
    monkeypatch.setattr(scheduler, "SCHEDULED_BATCH", 10)
    # A manual clock: creating 230 releases on a loaded machine must not make any due early.
    clock = ManualClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    pilot = Pilot(Engine(db, clock=clock, settings=type(FAST)(**FAST.__dict__)), tmp_path)
    pilot.config(
        TRAIN.replace(
            "    gates:\n      before:\n        - approval: {rules: [{role: release-managers}]}\n",
            "",
        )
    )
    at = clock.now() + timedelta(hours=1)
    ids = [
        create_release(
            pilot.engine,
            pilot.configs,
            actor="dave",
            items=[Item("api", f"1.{n}")],
            reason="T-1",
            scheduled_at=at,
        ).id
        for n in range(23)
    ]
    assert {release_state(pilot.engine, i).state for i in ids} == {ReleaseState.SCHEDULED}
    scheduled_task = TASKS[1]
    assert scheduled_task.__name__ == "_scheduled_releases"
    scheduled_task(pilot.engine)  # not yet due: nothing starts
    assert {release_state(pilot.engine, i).state for i in ids} == {ReleaseState.SCHEDULED}
    clock.set(at + timedelta(seconds=1))
    scheduled_task(pilot.engine)  # one tick: one batch of 10, the rest wait for the next
    waiting = [i for i in ids if release_state(pilot.engine, i).state is ReleaseState.SCHEDULED]
    assert len(waiting) == 13
    scheduled_task(pilot.engine)
    scheduled_task(pilot.engine)
    states = {release_state(pilot.engine, i).state for i in ids}
    assert ReleaseState.SCHEDULED not in states, states
