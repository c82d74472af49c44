"""Group commit: works handed in while another commits share the next commit (SQLite)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from interlock.audit.chain import verify
from interlock.storage.db import Database
from interlock.storage.tx import Tx
from tests.contract.conftest import NOW


def _audited(name: str, fail: bool = False) -> Callable[[Tx], str]:
    def work(tx: Tx) -> str:
        tx.audit(at=NOW, actor="w", action="contract.done", object_type="c", object_id=name)
        if fail:
            raise ValueError(f"{name} failed")
        return name

    return work


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _hand_in_while_one_commits(db: Database, works: list[Callable[[Tx], str]]) -> dict[int, Any]:
    """Hold a first work inside its transaction, queue ``works`` behind it, then let go."""
    entered, go = threading.Event(), threading.Event()
    outcome: dict[int, Any] = {}

    def first(tx: Tx) -> str:
        _audited("first")(tx)
        entered.set()
        go.wait(10)
        return "first"

    def call(slot: int, work: Callable[[Tx], str]) -> None:
        try:
            outcome[slot] = db.run_grouped(work)
        except Exception as exc:  # noqa: BLE001 - what the caller sees
            outcome[slot] = exc

    threads = [threading.Thread(target=call, args=(0, first))]
    threads[0].start()
    assert entered.wait(10)
    for slot, work in enumerate(works, start=1):
        threads.append(threading.Thread(target=call, args=(slot, work)))
        threads[-1].start()
    _wait_for(lambda: len(db._group) == len(works))  # all queued behind the first
    go.set()
    for thread in threads:
        thread.join(10)
    return outcome


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL has several writers at once: run_grouped is run there")
    return db


def test_completions_that_arrive_during_a_commit_share_the_next_one(sqlite_db: Database) -> None:
    commits: list[int] = []
    event.listen(sqlite_db.engine, "commit", lambda _conn: commits.append(1))
    outcome = _hand_in_while_one_commits(sqlite_db, [_audited(f"w{i}") for i in range(1, 4)])
    assert outcome == {0: "first", 1: "w1", 2: "w2", 3: "w3"}
    assert len(commits) == 2  # the first alone, then the three that waited, together
    with sqlite_db.read() as tx:
        events = tx.list_audit()
        assert verify(tx.stored_events(), head=tx.audit_head()).ok
    assert [e.object_id for e in events] == ["first", "w1", "w2", "w3"]


def test_a_failing_work_costs_the_others_of_its_group_nothing(sqlite_db: Database) -> None:
    works = [_audited("w1"), _audited("bad", fail=True), _audited("w3")]
    outcome = _hand_in_while_one_commits(sqlite_db, works)
    assert outcome[0] == "first" and outcome[1] == "w1" and outcome[3] == "w3"
    assert isinstance(outcome[2], ValueError) and str(outcome[2]) == "bad failed"
    with sqlite_db.read() as tx:
        events = tx.list_audit()
        assert verify(tx.stored_events(), head=tx.audit_head()).ok
    assert sorted(e.object_id for e in events) == ["first", "w1", "w3"]


def test_inside_a_transaction_it_joins_that_transaction(db: Database) -> None:
    with db.transaction() as tx:
        assert db.run_grouped(lambda inner: inner is tx) is True
