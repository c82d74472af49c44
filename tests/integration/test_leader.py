"""The scheduler election: exactly one scheduler runs its tasks; another takes over."""

from __future__ import annotations

import threading
import time

import pytest

from interlock.engine.core import Engine, Settings
from interlock.engine.scheduler import Scheduler
from interlock.storage.db import Database
from interlock.storage.leader import Leadership, current_leader
from tests.helpers import wait_for
from tests.support.postgres import pg_query


@pytest.fixture
def pg_db(pg_database_url):
    db = Database(pg_database_url)
    yield db
    db.dispose()


@pytest.mark.postgres
def test_one_process_leads_until_it_steps_down(pg_db):
    first, second = Leadership(pg_db, name="host:1"), Leadership(pg_db, name="host:2")
    try:
        assert first.check() is True
        assert second.check() is False
        assert first.check() is True  # still leading on the next tick
        assert current_leader(pg_db) == "interlock scheduler host:1"
        first.release()
        assert second.check() is True
        assert current_leader(pg_db) == "interlock scheduler host:2"
        assert first.check() is False
    finally:
        first.release()
        second.release()


@pytest.mark.postgres
def test_leadership_ends_with_the_leaders_connection(pg_db, pg_database_url):
    first, second = Leadership(pg_db, name="host:1"), Leadership(pg_db, name="host:2")
    try:
        assert first.check() and not second.check()
        # What the server does when the leader's process or host dies: end its session.
        pg_query(
            pg_database_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'interlock scheduler host:1'",
        )
        # pg_terminate_backend only signals: the session's advisory lock goes when the
        # backend has exited, a moment later on a busy machine.
        wait_for(second.check, message="the second to lead once the first's session ended")
        assert first.check() is False  # it notices, and does not lead beside the new one
        assert first.leading is False
    finally:
        first.release()
        second.release()


class Counting:
    """A scheduler task that counts the ticks it ran in."""

    def __init__(self) -> None:
        self.runs = 0
        self.lock = threading.Lock()

    def __call__(self, engine: Engine) -> None:
        with self.lock:
            self.runs += 1


@pytest.mark.postgres
def test_only_the_leading_scheduler_runs_its_tasks_and_another_takes_over(pg_database_url):
    settings = Settings(tick=0.1)
    dbs = [Database(pg_database_url) for _ in range(3)]
    tasks = [Counting() for _ in dbs]
    schedulers = [
        Scheduler(
            Engine(db, settings=settings),
            tasks=[task],
            leadership=Leadership(db, name=f"host:{i}"),
        )
        for i, (db, task) in enumerate(zip(dbs, tasks, strict=True))
    ]
    try:
        for scheduler in schedulers:
            scheduler.start()
        time.sleep(1.0)
        running = [i for i, task in enumerate(tasks) if task.runs]
        assert len(running) == 1, [t.runs for t in tasks]
        leader = running[0]
        assert tasks[leader].runs >= 5
        schedulers[leader].stop()
        before = {i: t.runs for i, t in enumerate(tasks)}
        taken = time.monotonic()
        wait_for(
            lambda: [i for i, t in enumerate(tasks) if i != leader and t.runs > before[i]],
            timeout=3,
            message="another scheduler to take over",
        )
        assert time.monotonic() - taken < 1.0  # within a few ticks of 0.1s
        time.sleep(0.5)
        after = [i for i, t in enumerate(tasks) if i != leader and t.runs > before[i]]
        assert len(after) == 1  # and exactly one of them
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        for db in dbs:
            db.dispose()


def test_on_sqlite_the_scheduler_always_leads(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'one.db'}")
    task = Counting()
    scheduler = Scheduler(Engine(db, settings=Settings(tick=0.05)), tasks=[task])
    try:
        assert scheduler.leads()
        scheduler.start()
        wait_for(lambda: task.runs >= 3, timeout=5, message="three ticks")
    finally:
        scheduler.stop()
        db.dispose()
