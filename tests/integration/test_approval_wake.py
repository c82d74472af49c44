"""An approval that clears its gate starts the next step at once, in its own commit.

The approval's transaction decides the gate, readies the step behind it and
claims it for an idle worker of this process (the hand-over): no wake-up, no
poll, no claim transaction of the worker's own, on SQLite and on PostgreSQL.
Its statements are counted, so a read that creeps back into this path (it
costs a round trip each on PostgreSQL) shows here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from interlock.domain.states import NodeState, ReleaseState
from interlock.engine import approvals
from interlock.engine.access import Access
from interlock.engine.clock import ManualClock
from interlock.engine.identity import Identity, principal_of
from interlock.errors import Forbidden
from interlock.storage.approvals import ApprovalQueries
from tests.helpers import (
    idle_workers,
    pipeline_of,
    round_trips,
    running,
    wait_for,
    wait_release_end,
)

CONFIG = """\
version: 1
roles: {approvers: [carol]}
permissions: [{role: approvers, allow: [approve]}]
environments:
  - name: prod
    gates:
      before:
        - approval: {rules: [{role: approvers}]}
services:
  api:
    deploy: [{name: go, run: "true", idempotent: true}]
"""

# The approval's statements, from BEGIN to the last before COMMIT: the release
# and its items, the config's version, the release's approval gates (one read),
# the gate's escalations and approvers, its approvals, the approval stored (the
# approver was checked as the API gave her), the gate passed and the step
# readied, the deployment advanced, the step claimed for an idle worker, the release's
# revision, the delivery facts and the audit chain. PostgreSQL has no BEGIN
# statement (and no longer reads the gate again under its row lock: the gates are
# read locked) and takes the facts' lock; its claim finds, locks and leases the step in
# one statement, where SQLite reads and leases in two; its audit chain is one statement
# (the head locked, the events chained and inserted and the head moved), where SQLite
# sends two.
STATEMENTS = {"sqlite": 20, "postgresql": 19}
# What costs on PostgreSQL is the round trip: there the reads that do not depend on
# each other go out together (storage.base.run_together, psycopg's pipeline mode):
# the release, its items, the config's version and its gates; then the gate's
# approvals, escalations and approvers; the deployment locked and its counts.
# The decision itself is stored in the second of those (an upsert). The writes no
# one reads back before commit are held and sent with the audit chain (send_later):
# the claim's attempt row, the release's revision, the facts' lock and the gate's
# facts. 13 round trips before these (the claim's read and lease apart, each held
# write sent alone) are 7 now (BEGIN not counted; no ping either).
ROUND_TRIPS = {"sqlite": 20, "postgresql": 7}


@pytest.fixture
def idle(pilot: Any) -> Iterator[Any]:
    """Two idle workers that would not look for work on their own for a minute."""
    pilot.config(CONFIG)
    Identity(pilot.engine).add_user(actor="tester", name="carol")
    with idle_workers(pilot.engine) as pool:
        yield pool


def _at_gate(pilot: Any) -> Any:
    release = pilot.release("api@1.0")

    def gate() -> Any:
        with pilot.read() as tx:
            found = [
                n
                for d in tx.list_deployments(release_id=release.id)
                for n in tx.nodes_of(d.id)
                if n.executor == "approval" and n.state is NodeState.WAITING
            ]
        return found[0] if found else None

    wait_for(gate, message="the release to wait at its gate")
    return release


def _carol(pilot: Any) -> Any:
    """The approver, as the API authenticates her."""
    config = pilot.engine.configs.active().config
    with pilot.read() as tx:
        user = tx.get_user("carol")
        assert user is not None
        return principal_of(tx, user, config.roles, config.teams)


def _approve(pilot: Any, release_id: int, carol: Any = None) -> dict[str, Any]:
    engine = pilot.engine
    return approvals.give(
        engine,
        Access(engine.configs),
        carol or _carol(pilot),
        release_id=release_id,
        environment=None,
        gate=None,
        decision="approve",
        comment=None,
    )


def _step(pilot: Any, release_id: int) -> Any:
    with pilot.read() as tx:
        return next(
            n
            for d in tx.list_deployments(release_id=release_id)
            for n in tx.nodes_of(d.id)
            if n.kind == "step"
        )


def test_the_approval_starts_the_step_on_an_idle_worker_in_its_own_commit(pilot, idle):
    release = _at_gate(pilot)
    carol = _carol(pilot)
    wait_for(lambda: len(idle._idle._slots) == 2, message="both workers idle again")
    here = threading.current_thread()
    statements: list[str] = []
    batches: list[Any] = []  # per statement: the psycopg pipeline it went out in, or None
    announced: list[set[str]] = []

    def count(_conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        if threading.current_thread() is here:
            statements.append(sql)
            batches.append(pipeline_of(cursor))

    pilot.engine.db.on_commit(
        lambda channels: announced.append(channels) if threading.current_thread() is here else None
    )
    event.listen(pilot.engine.db.engine, "before_cursor_execute", count)
    try:
        answer = _approve(pilot, release.id, carol)
    finally:
        event.remove(pilot.engine.db.engine, "before_cursor_execute", count)
    assert answer["gate_state"] == "succeeded"
    # The approval's commit holds the step's claim: leased to a worker, started...
    step = _step(pilot, release.id)
    assert step.state is not NodeState.READY
    assert step.lease_owner in {f"{pilot.engine.instance}:worker-{i}" for i in range(2)}
    assert step.started_at is not None
    # ...so it woke no one (nothing was left to find), and the step ran with no poll.
    assert not any("work" in channels for channels in announced)
    assert wait_release_end(pilot.engine, release.id, timeout=20).state is ReleaseState.SUCCEEDED
    with pilot.read() as tx:
        events = [e.action for e in tx.list_audit(object_type="step")]
    assert events.count("step.started") == 1
    assert len(statements) == STATEMENTS[pilot.engine.db.dialect], "\n".join(statements)
    trips = round_trips(batches)
    assert trips == ROUND_TRIPS[pilot.engine.db.dialect], batches


def test_a_second_approval_of_a_passed_gate_is_refused_and_starts_nothing(pilot, idle):
    release = _at_gate(pilot)
    first = _approve(pilot, release.id)
    assert (first["recorded"], first["gate_state"]) == (True, "succeeded")
    assert wait_release_end(pilot.engine, release.id, timeout=20).state is ReleaseState.SUCCEEDED
    with pytest.raises(Exception, match="already succeeded"):
        _approve(pilot, release.id)
    with pilot.read() as tx:
        given = tx.approvals_for(release.id)
        events = [e.action for e in tx.list_audit(object_type="step")]
    assert [(a.approver, a.decision) for a in given] == [("carol", "approve")]
    assert events.count("step.started") == 1


TWO_NEEDED = """\
version: 1
roles: {approvers: [carol, dave], sre: [erin]}
permissions: [{role: approvers, allow: [approve]}, {role: sre, allow: [approve]}]
environments:
  - name: prod
    gates:
      before:
        - approval: {rules: [{role: approvers, count: 2}], expires: 60}
services:
  api:
    deploy: [{name: go, run: "true", idempotent: true}]
"""


def _person(pilot: Any, name: str) -> Any:
    config = pilot.engine.configs.active().config
    with pilot.read() as tx:
        user = tx.get_user(name)
        assert user is not None
        return principal_of(tx, user, config.roles, config.teams)


def test_a_decision_is_stored_once_renewed_after_it_expired_and_never_for_an_outsider(pilot):
    """The approval is stored in the round trip of the gate's reads (an upsert on
    PostgreSQL): a second one that still stands stores nothing, one given again after
    it expired renews the row, and one refused by the gate's rules is rolled back."""
    pilot.engine.clock = clock = ManualClock()
    pilot.config(TWO_NEEDED)
    for name in ("carol", "erin"):
        Identity(pilot.engine).add_user(actor="tester", name=name)
    with idle_workers(pilot.engine):
        release = _at_gate(pilot)
        carol, erin = _person(pilot, "carol"), _person(pilot, "erin")
        with pytest.raises(Forbidden, match="not among those who can sign off"):
            _approve(pilot, release.id, erin)  # holds approve, but is no approver of the gate
        with pilot.read() as tx:
            assert tx.approvals_for(release.id) == []
        first = _approve(pilot, release.id, carol)
        again = _approve(pilot, release.id, carol)
        assert (first["recorded"], again["recorded"]) == (True, False)
        clock.advance(120)  # carol's approval expired: given again, it is renewed
        renewed = _approve(pilot, release.id, carol)
        assert (renewed["recorded"], renewed["gate_state"]) == (True, "waiting")
        with pilot.read() as tx:
            given = tx.approvals_for(release.id)
            events = [e.action for e in tx.list_audit(object_type="release")]
        assert [(a.approver, a.created_at) for a in given] == [("carol", clock.now())]
        assert events.count("approval.given") == 2


AHEAD = """\
version: 1
roles: {{approvers: [carol]}}
permissions: [{{role: approvers, allow: [approve]}}]
environments:
  - name: staging
  - name: prod
    gates:
      before:
        - approval: {{rules: [{{role: approvers}}]}}
services:
  api:
    deploy:
      - {{name: go, run: "while [ ! -e {go} ]; do sleep 0.02; done", idempotent: true}}
"""


def test_an_approval_given_ahead_while_the_gate_comes_to_wait_still_counts(
    backend, pilot, tmp_path, monkeypatch
):
    """An approval given ahead of time, whose transaction the gate overtakes (reached
    after the approval read the release's gates, the gate reads its approvals before
    this one is stored and waits): the approval looks at the gate again after its
    commit and lets it pass (CI saw a release wait at a gate whose approvals were all
    given)."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: the gate waits before the approval or reads it")
    go = tmp_path / "go"  # staging's step ends when it exists
    pilot.config(AHEAD.format(go=go))
    Identity(pilot.engine).add_user(actor="tester", name="carol")
    carol = _carol(pilot)
    real = ApprovalQueries.approval_context
    here = threading.current_thread()
    overtaken: list[Any] = []

    def prod_gate() -> Any:
        with pilot.read() as tx:
            return next(
                (
                    n
                    for d in tx.list_deployments(release_id=release.id)
                    if d.environment == "prod"
                    for n in tx.nodes_of(d.id)
                    if n.executor == "approval" and n.state is NodeState.WAITING
                ),
                None,
            )

    def read_then_let_the_gate_overtake(self: Any, *args: Any, **kwargs: Any) -> Any:
        read = real(self, *args, **kwargs)  # prod's gate not reached: nothing to lock
        if threading.current_thread() is here and not overtaken:
            go.touch()  # staging ends, prod's gate reads its approvals (none) and waits
            overtaken.append(wait_for(prod_gate, timeout=30, message="the gate to wait"))
        return read

    monkeypatch.setattr(ApprovalQueries, "approval_context", read_then_let_the_gate_overtake)
    with running(pilot.engine):
        release = pilot.release("api@1.0")
        answer = approvals.give(
            pilot.engine,
            Access(pilot.engine.configs),
            carol,
            release_id=release.id,
            environment="prod",
            gate=None,
            decision="approve",
            comment=None,
        )
        assert overtaken, "the gate did not come to wait inside the approval's transaction"
        assert answer["gate_state"] == "succeeded"
        assert wait_release_end(pilot.engine, release.id).state is ReleaseState.SUCCEEDED
