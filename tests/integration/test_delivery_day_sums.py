"""The day sums of the delivery facts, moved in place by each refresh, equal a rebuild.

A refresh adds what its rows add to ``delivery_days``, ``delivery_people`` and
``delivery_step_days`` after it, less what they added before, instead of
summing their days again (storage/facts/day_sums.py). These tests hold that
to a fresh rebuild: rows re-derived in place, rows that move to another day or
person (their old group left empty), rows of other deployments re-derived by a
refresh, and on PostgreSQL deployments finishing at once in several
transactions, which no longer wait for each other over a day's sums.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from sqlalchemy import text, update

from interlock.storage.db import Database
from interlock.storage.schema import deployments, nodes, releases
from tests.integration.test_metrics_db import (
    CONFIG,
    Records,
    at,
    delivery_snapshot,
    forget_facts,
    rebuilt_snapshot,
    seed,
)


@pytest.fixture
def seeded(pilot: Any) -> Any:
    """The records of tests/integration/test_metrics_db.py, their facts rebuilt."""
    pilot.config(CONFIG)
    pilot.ids = seed(pilot.engine)
    return pilot


def test_rows_moved_to_another_day_and_person_leave_no_empty_sums(pilot: Any) -> None:
    pilot.config(CONFIG)
    db = pilot.engine.db
    with db.transaction() as tx:
        r = Records(tx)
        first = r.deployment(
            r.release("alice", 1, ("api", "1.0", None)), "production", "succeeded", 2, 3
        )
        r.node(first, "api/roll-out", 2, 3)
        other = r.deployment(
            r.release("alice", 1, ("web", "1.0", None)), "production", "failed", 2, 4
        )
        r.node(other, "web/roll-out", 2, 4, state="failed")
        tx.refresh_delivery([first, other])
    assert delivery_snapshot(pilot) == rebuilt_snapshot(pilot)
    with db.transaction() as tx:  # records changed behind the facts' back, then refreshed
        release_of = tx.conn.execute(
            text("SELECT release_id FROM deployments WHERE id = :id"), {"id": first}
        ).scalar_one()
        tx.conn.execute(
            update(releases).where(releases.c.id == release_of).values(created_by="bob")
        )
        tx.conn.execute(
            update(deployments)
            .where(deployments.c.id == first)
            .values(started_at=at(30), finished_at=at(31), state="failed")
        )
        tx.conn.execute(
            update(nodes)
            .where(nodes.c.deployment_id == first)
            .values(started_at=at(30), finished_at=at(31), executor="manual")
        )
        tx.refresh_delivery([first])
    after = delivery_snapshot(pilot)
    assert after == rebuilt_snapshot(pilot)
    # day 0 keeps only web's rows; alice ran nothing left on day 0 for api
    assert [row[:3] for row in after["delivery_people"]] == [
        ("production", 19786, "alice"),
        ("production", 19787, "bob"),
    ]
    with db.transaction() as tx:  # and a deployment whose facts go away altogether
        tx.conn.execute(
            update(deployments).where(deployments.c.id == other).values(finished_at=None)
        )
        tx.refresh_delivery([other])
    after = delivery_snapshot(pilot)
    assert after == rebuilt_snapshot(pilot)
    assert {row[1] for row in after["delivery_days"]} == {19787}


def test_refreshes_of_changed_records_from_built_sums_equal_a_rebuild(seeded: Any) -> None:
    """From sums already built: each refresh takes its rows' old share away first.

    The changes re-derive rows of deployments not refreshed: D7 succeeding makes it
    the first deploy of its commits, not D8; D7 starting earlier changes the run
    before D8's.
    """
    ids = seeded.ids
    db = seeded.engine.db
    changes = [
        ("D7", {"state": "succeeded"}),
        ("D2", {"finished_at": at(54)}),
        ("D7", {"started_at": at(90)}),
        ("D5", {"finished_at": at(79), "state": "failed"}),
        ("D9", {"state": "rolled_back"}),
    ]
    for name, values in changes:
        with db.transaction() as tx:
            tx.conn.execute(
                update(deployments).where(deployments.c.id == ids[name]).values(**values)
            )
            tx.refresh_delivery([ids[name]])
        assert delivery_snapshot(seeded) == rebuilt_snapshot(seeded), name
    with db.read() as tx:
        everything = list(tx.conn.exec_driver_sql("SELECT id FROM deployments").scalars())
    random.Random(7).shuffle(everything)
    with db.transaction() as tx:  # refreshed again, a few at a time: nothing moves
        for n in range(0, len(everything), 3):
            tx.refresh_delivery(everything[n : n + 3])
    assert delivery_snapshot(seeded) == rebuilt_snapshot(seeded)


SERVICES = ("api", "web")
PEOPLE = ("alice", "bob", "carol")


def finished_deployments(pilot: Any, count: int) -> list[int]:
    """``count`` finished deployments on one day, of api and web by three people, with
    steps (a few manual), their facts not yet derived."""
    ids = []
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        for n in range(count):
            service = SERVICES[n % 2]
            start = 1 + n * 0.25
            release = r.release(PEOPLE[n % 3], start, (service, f"1.{n}", None))
            state = "failed" if n % 5 == 4 else "succeeded"
            deployment = r.deployment(release, "production", state, start, start + 0.1 + n % 3)
            r.node(deployment, f"{service}/roll-out", start, start + 0.1)
            executor = "manual" if n % 4 == 0 else "shell"
            r.node(deployment, f"{service}/check", start, start + 0.1, executor=executor)
        ids = list(tx.conn.exec_driver_sql("SELECT id FROM deployments ORDER BY id").scalars())
        forget_facts(tx)
    return ids


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_deployments_finishing_at_once_in_many_transactions_sum_as_a_rebuild(
    pilot: Any,
) -> None:
    """Four connections refresh finished deployments of one day at once, each in its own
    transaction as a worker does; the sums they leave are a rebuild's."""
    pilot.config(CONFIG)
    ids = finished_deployments(pilot, 40)
    handles = [Database(pilot.engine.db.url) for _ in range(4)]
    start = threading.Barrier(len(handles))
    failures: list[BaseException] = []

    def refresh(slot: int) -> None:
        try:
            start.wait()
            for deployment_id in ids[slot :: len(handles)]:
                handles[slot].run(
                    lambda tx, d=deployment_id: tx.refresh_delivery([d], ended=[d], keyed=True)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=refresh, args=(slot,)) for slot in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for handle in handles:
        handle.dispose()
    assert not failures, failures
    found = delivery_snapshot(pilot)
    assert len(found["delivery_facts"]) == 40
    assert found == rebuilt_snapshot(pilot)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_services_finishing_on_one_day_do_not_wait_for_each_others_sums(
    pilot: Any,
) -> None:
    """One transaction has refreshed api's deployment and not committed yet: web's, by
    someone else on the same day, is refreshed and committed meanwhile (no lock on
    the day's sums; each of its sum rows is its own)."""
    pilot.config(CONFIG)
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        api = r.deployment(
            r.release("alice", 1, ("api", "1.0", None)), "production", "succeeded", 2, 2.001
        )
        r.node(api, "api/roll-out", 2, 2.001)
        web = r.deployment(
            r.release("bob", 1, ("web", "1.0", None)), "production", "succeeded", 2, 3
        )
        r.node(web, "web/roll-out", 2, 3)
        forget_facts(tx)
    other = Database(pilot.engine.db.url)
    try:
        with pilot.engine.db.transaction() as first:
            first.refresh_delivery([api], ended=[api], keyed=True)
            with other.transaction() as second:
                second.conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                second.refresh_delivery([web], ended=[web], keyed=True)
    finally:
        other.dispose()
    assert delivery_snapshot(pilot) == rebuilt_snapshot(pilot)
