"""Timers live in the database: a brand-new engine on the same database fires them on time.

Each test runs a first engine until a gate waits, stops it, and then starts a
second engine (its own ``Database`` object, nothing shared in memory) with its
clock past the moment the timer was set for: a window opening, an approval's
expiry, a check's next poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from interlock.domain.states import NodeState, ReleaseState
from interlock.engine import approvals
from interlock.engine.access import Access
from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.identity import Identity, Principal
from interlock.storage.db import Database
from tests.conftest import FAST
from tests.helpers import running, wait_for, wait_release_end
from tests.integration.conftest import Pilot
from tests.integration.test_gates import _gate

THURSDAY_EVENING = datetime(2026, 3, 26, 16, 30, tzinfo=UTC)  # 17:30 in Berlin


@contextmanager
def engine_at(database_url: str, when: datetime) -> Iterator[tuple[Engine, ManualClock]]:
    """A fresh engine on ``database_url`` with its own clock: a restarted server."""
    clock = ManualClock(when)
    engine = Engine(Database(database_url), clock=clock, settings=type(FAST)(**FAST.__dict__))
    try:
        yield engine, clock
    finally:
        engine.db.dispose()


def _first_run(database_url: str, tmp_path: Path, config: str, ref: str, gate: str) -> int:
    """Start a release on a first engine and stop that engine once ``gate`` waits."""
    with engine_at(database_url, THURSDAY_EVENING) as (engine, _):
        pilot = Pilot(engine, tmp_path)
        pilot.config(config)
        with running(engine):
            release = pilot.release(ref)
            wait_for(
                lambda: (
                    (n := _gate(pilot, release.id, gate)[0])
                    and n.attempt >= 1
                    and n.state in (NodeState.READY, NodeState.WAITING)
                ),
                message=f"the {gate} gate to wait",
            )
        return int(release.id)


def test_a_window_opens_after_a_restart(database_url, tmp_path):
    config = """\
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
        """
    release_id = _first_run(database_url, tmp_path, config, "api@1.0.0", "window")
    assert not (tmp_path / "out.log").exists()
    # Monday 09:00 in Berlin (07:00 UTC): the window opens while a new engine runs.
    with engine_at(database_url, datetime(2026, 3, 30, 6, 59, tzinfo=UTC)) as (engine, clock):
        with running(engine):
            clock.set(datetime(2026, 3, 30, 7, 0, 1, tzinfo=UTC))
            done = wait_release_end(engine, release_id)
    assert done.state is ReleaseState.SUCCEEDED
    assert (tmp_path / "out.log").read_text().splitlines() == ["deployed"]


def test_a_check_polls_again_after_a_restart(database_url, tmp_path):
    config = """\
        version: 1
        environments:
          - name: production
            gates:
              before:
                - check: {run: "test -f ready.flag", interval: 10m, timeout: 1d}
        services:
          api: {deploy: [{name: roll-out, run: "echo deployed >> out.log"}]}
        """
    release_id = _first_run(database_url, tmp_path, config, "api@1.0.0", "check")
    (tmp_path / "ready.flag").touch()
    with engine_at(database_url, THURSDAY_EVENING + timedelta(minutes=5)) as (engine, clock):
        pilot = Pilot(engine, tmp_path)
        with running(engine):
            node, _ = _gate(pilot, release_id, "check")
            assert node.not_before == THURSDAY_EVENING + timedelta(minutes=10)
            clock.advance(5 * 60 + 1)  # the next poll, set by the first engine, is due
            done = wait_release_end(engine, release_id)
        node, attempts = _gate(pilot, release_id, "check")
    assert done.state is ReleaseState.SUCCEEDED
    assert [a.outcome for a in attempts] == ["waiting", "passed"]  # one poll per engine


def test_an_approval_expires_across_a_restart(database_url, tmp_path):
    config = """\
        version: 1
        roles: {leads: [lena, lars]}
        permissions: [{role: leads, allow: [approve]}]
        environments:
          - name: production
            gates:
              before:
                - approval: {rules: [{role: leads, count: 2}], expires: 1h}
        services:
          api: {deploy: [{name: roll-out, run: "echo deployed >> out.log"}]}
        """
    release_id = _first_run(database_url, tmp_path, config, "api@1.0.0", "approval")

    def sign(engine: Engine, name: str) -> dict:
        return approvals.give(
            engine,
            Access(engine.configs),
            Principal(name, "user", frozenset({"leads"}), frozenset()),
            release_id=release_id,
            environment="production",
            gate=None,
            decision="approve",
            comment=None,
        )

    with engine_at(database_url, THURSDAY_EVENING) as (engine, _):
        identity = Identity(engine)
        for name in ("lena", "lars"):
            identity.add_user(actor="test", name=name)
        assert sign(engine, "lena")["gate_state"] == "waiting"
    # Two hours later, on a new engine: lena's approval (1h) no longer counts.
    with engine_at(database_url, THURSDAY_EVENING + timedelta(hours=2)) as (engine, _):
        with running(engine):
            assert sign(engine, "lars")["gate_state"] == "waiting"
            assert sign(engine, "lena")["gate_state"] == "succeeded"
            done = wait_release_end(engine, release_id)
    assert done.state is ReleaseState.SUCCEEDED
