"""A release's end: the statements of the step that ends its deployment and the release.

The last step's transaction also ends its deployment and its release, looks at
the environment's queue, and derives the deployment's delivery facts, moving
the sums of their day (storage/facts/). That refresh runs prepared statements
(compiled once), and for a deployment that just ended it only inserts: nothing
of it was derived before (a deployment ends once) and its approval waits were
recorded as they were decided. Its statements are counted here, so one that
creeps back into this path shows; the facts it leaves are held to a rebuild.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from interlock.engine import approvals
from interlock.engine.access import Access
from interlock.engine.identity import Identity, principal_of
from interlock.engine.steps import claim, complete, prepare
from interlock.executors.base import StepResult
from tests.helpers import pipeline_of, round_trips
from tests.integration.test_metrics_db import delivery_snapshot, rebuilt_snapshot
from tests.support.driver import EngineDriver

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: a, uses: noop, idempotent: true}
      - {name: b, uses: noop, idempotent: true}
"""

# From BEGIN to the last statement before COMMIT: the step's success (node, attempt),
# its service recorded (the service's open nodes, its inventory row read and
# written, its open incidents), the deployment's counts and its end, the release
# (locked, its items) and its end, the environment's queue, the search for a next
# node, the release's revision; then the facts: the deployment's step rows and fact
# rows inserted, the rows of its commit, the saved totals behind it, its pipeline's
# runs, its commit's first deploy marked, its failure episodes, what its rows add to
# the day sums and the three sums moved; and the audit chain. The refresh alone
# was 20 statements through SQLAlchemy, with 7 that read, took away or deleted
# what a deployment that just ended cannot have.
# PostgreSQL sends no BEGIN, takes the facts' lock (shared, then the service's key)
# and the queue's gate, and chains its audit in one statement.
# The manual step runs of the deployment (delivery_manual, migration 0024: the manual-step
# ranking walks their index instead of joining the history) are one more insert, sent
# with the step rows' (one round trip on PostgreSQL).
STATEMENTS = {"sqlite": 29, "postgresql": 31}
# On PostgreSQL the refresh's statements go out in four round trips (storage.base.run_together):
# the locks and the inserts; the reads of the rows they re-derive; the changes and the
# tally of what the rows add; the sums moved. Its 13 round trips were one per statement.
# The writes no one reads back (the release's revision) go out with the first of them
# (storage.base.send_later): 20 round trips became 19. The sums moved go out with the
# audit chain and the COMMIT (a person's row is locked for that round trip only): 18.
ROUND_TRIPS = {"sqlite": 29, "postgresql": 18}


def test_the_last_step_ends_the_release_in_counted_statements(pilot: Any) -> None:
    engine = pilot.engine
    pilot.config(CONFIG)
    release = pilot.release("api@1.0")
    cache: dict[int, Any] = {}  # a worker keeps what never changes about a release

    def succeed_and_claim_next(claimed: Any) -> Any:  # what a worker does
        def work(tx: Any) -> Any:
            complete(tx, engine, prepare(engine, *claimed), StepResult(ok=True))
            return claim(tx, engine, "host:1:w-0", cache)

        return engine.db.run(work)

    first = engine.db.run(lambda tx: claim(tx, engine, "host:1:w-0", cache))
    last = succeed_and_claim_next(first)
    assert last[0].key == "api/b"
    sent: list[str] = []
    batches: list[Any] = []  # per statement: the psycopg pipeline it went out in, or None

    def seen(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))
        batches.append(pipeline_of(cursor))

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    try:
        assert succeed_and_claim_next(last) is None
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", seen)
    with pilot.read() as tx:
        assert tx.require_release(release.id).state.value == "succeeded"
    assert len(sent) == STATEMENTS[engine.db.dialect], "\n".join(sent)
    trips = round_trips(batches)
    assert trips == ROUND_TRIPS[engine.db.dialect], batches
    # Nothing of the deployment is read back, taken away or deleted before it is derived.
    assert not [s for s in sent if s.startswith("DELETE FROM delivery")], sent
    facts = delivery_snapshot(pilot)
    assert len(facts["delivery_facts"]) == 1
    assert facts == rebuilt_snapshot(pilot)


GATED = """\
version: 1
roles: {approvers: [carol]}
permissions: [{role: approvers, allow: [approve]}]
environments:
  - name: staging
  - name: prod
    gates:
      before:
        - approval: {rules: [{role: approvers}]}
services:
  api:
    deploy: [{name: go, uses: noop, idempotent: true}]
"""


def test_an_approval_wait_decided_before_the_end_is_kept_as_a_rebuild_derives_it(
    pilot: Any,
) -> None:
    """The deployment's end derives its facts without its approval waits: the decision
    recorded them in its own transaction, and the end leaves them as they are."""
    engine = pilot.engine
    pilot.config(GATED)
    Identity(engine).add_user(actor="tester", name="carol")
    config = engine.configs.active().config
    with pilot.read() as tx:
        carol = principal_of(tx, tx.get_user("carol"), config.roles, config.teams)
    driver = EngineDriver(engine)
    releases = [pilot.release(f"api@1.{n}") for n in range(2)]
    for release in releases:  # staging, then prod waits at its gate; decided there
        driver.run_until_idle()
        decision = "approve" if release is releases[0] else "reject"
        approvals.give(
            engine,
            Access(engine.configs),
            carol,
            release_id=release.id,
            environment=None,
            gate=None,
            decision=decision,
            comment=None if decision == "approve" else "not this one",
        )
        driver.run_until_idle()
    with pilot.read() as tx:
        ended = [tx.require_release(r.id).state.value for r in releases]
    assert ended == ["succeeded", "failed"]
    facts = delivery_snapshot(pilot)
    assert len(facts["delivery_gates"]) == 2
    assert facts == rebuilt_snapshot(pilot)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("count", [1, 3, 4, 2000])
def test_a_refresh_looks_its_deployments_up_by_key_whatever_their_number(
    pilot: Any, count: int
) -> None:
    """SQLite's planner (no statistics) would range over every finished deployment or
    step in an index on (kind, finished_at) rather than look a few ids up: a refresh's
    cost would grow with the history. The ids are one IN list (a JSON array past
    ``WIDEST``), and every other condition on those tables is a ``likely(...)``."""
    ids = list(range(1, count + 1))
    with pilot.engine.db.transaction() as tx:
        for name in ("insert_facts", "insert_steps", "insert_gates", "tally_facts"):
            statement, params = tx._prepared((name, {"ids": ids}))
            compiled = statement._for(tx.conn.dialect)
            plan = [
                row[3]
                for row in tx.conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + compiled.sql, compiled._params(params)
                )
            ]
            scans = [
                step for step in plan if "kind_finished_at" in step or step.startswith("SCAN d")
            ]
            assert not scans, (name, plan)
            assert any("PRIMARY KEY" in step or "deployment_id" in step for step in plan), plan
