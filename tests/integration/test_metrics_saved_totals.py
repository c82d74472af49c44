"""The exposition's totals of the history, saved so that a new process starts from them.

A server that summed the history saves it (``metric_marks``); the next
process's first scrape reads the saved totals and only what ended since. A
change dated behind the saved mark (a deployment written past the engine, an
incident opened or resolved in the past, a rebuild of the delivery facts)
makes them stale, for the next process and for a running one alike. Whatever
the order of writes, scrapes and restarts, every scrape equals the history
summed afresh (the property test below, on random histories).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.exposition import BOUNDS, SAVED, DeliveryCollector
from interlock.storage.metric_totals import Totals
from interlock.storage.tx import Tx
from tests.integration.test_metrics_api import samples, stable
from tests.integration.test_metrics_db import CONFIG, HOUR, SHA, Records, at, seed

DEPLOYS = "interlock_deployments_total"
API_PRODUCTION = frozenset(
    {"service": "api", "environment": "production", "kind": "deploy", "outcome": "succeeded"}
    .items()
)  # fmt: skip
INCIDENTS = (
    "interlock_incidents_total",
    frozenset({"service": "web", "environment": "production"}.items()),
)


def summed_from(monkeypatch: Any) -> list[float | None]:
    """The start of every range of history summed from the rows from now on."""
    asked: list[float | None] = []
    summed = Tx.metric_totals

    def recording(self: Any, start: float | None, end: float | None, bounds: Any) -> Any:
        asked.append(start)
        return summed(self, start, end, bounds)

    monkeypatch.setattr(Tx, "metric_totals", recording)
    return asked


def collector(pilot: Any, clock: ManualClock) -> DeliveryCollector:
    """A collector as a new process makes one."""
    return DeliveryCollector(Engine(pilot.engine.db, clock=clock), lag=600)


def backdated_deployment(pilot: Any, finished: float) -> None:
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        again = r.release("alice", finished - 0.2, ("api", "1.0", SHA["a1"]))
        made = r.deployment(again, "production", "succeeded", finished - 0.1, finished)
        tx.refresh_delivery([made])  # written past the engine: derive its facts as it would


@pytest.fixture
def seeded(pilot: Any) -> Any:
    pilot.config(CONFIG)
    seed(pilot.engine)
    return pilot


def test_a_new_process_s_first_scrape_starts_from_the_saved_totals(seeded, monkeypatch):
    clock = ManualClock(at(200))
    first = samples(collector(seeded, clock).exposition().decode())
    with seeded.engine.db.read() as tx:
        saved = tx.saved_totals(SAVED, BOUNDS)
    assert saved is not None and saved.totals is not None
    assert saved.mark == at(200).timestamp() - 600

    asked = summed_from(monkeypatch)
    clock.advance(5 * 60)
    restarted = samples(collector(seeded, clock).exposition().decode())
    assert asked and None not in asked  # the history was not summed again
    assert stable(restarted) == stable(first)
    assert restarted[(DEPLOYS, API_PRODUCTION)] == 4


def test_a_deployment_written_behind_the_mark_makes_the_saved_totals_stale(seeded, monkeypatch):
    clock = ManualClock(at(200))
    running = collector(seeded, clock)
    assert samples(running.exposition().decode())[(DEPLOYS, API_PRODUCTION)] == 4
    backdated_deployment(seeded, 100)  # far behind the mark

    with seeded.engine.db.read() as tx:
        saved = tx.saved_totals(SAVED, BOUNDS)
    assert saved is not None and saved.totals is None and saved.mark is None
    asked = summed_from(monkeypatch)
    assert samples(collector(seeded, clock).exposition().decode())[(DEPLOYS, API_PRODUCTION)] == 5
    assert None in asked  # the new process summed the history again
    # and the running one noticed too, rather than keep its own sum of the history
    assert samples(running.exposition().decode())[(DEPLOYS, API_PRODUCTION)] == 5


def test_an_incident_opened_in_the_past_makes_the_saved_totals_stale(seeded):
    clock = ManualClock(at(200))
    running = collector(seeded, clock)
    before = samples(running.exposition().decode())[INCIDENTS]
    with seeded.engine.db.transaction() as tx:
        Records(tx).incident("web", 30, 31, None)  # reported today, opened days ago
    assert samples(running.exposition().decode())[INCIDENTS] == before + 1
    assert samples(collector(seeded, clock).exposition().decode())[INCIDENTS] == before + 1


def test_what_ends_now_keeps_the_saved_totals(seeded, monkeypatch):
    clock = ManualClock(at(200))
    collector(seeded, clock).exposition()
    backdated_deployment(seeded, 199.95)  # three minutes ago: ahead of the mark
    asked = summed_from(monkeypatch)
    found = samples(collector(seeded, clock).exposition().decode())
    assert None not in asked
    assert found[(DEPLOYS, API_PRODUCTION)] == 5


def test_rebuilding_the_delivery_facts_forgets_the_saved_totals(seeded):
    clock = ManualClock(at(200))
    collector(seeded, clock).exposition()
    with seeded.engine.db.transaction() as tx:
        generation = tx.saved_totals(SAVED).generation
        tx.rebuild_delivery()
    with seeded.engine.db.read() as tx:
        saved = tx.saved_totals(SAVED, BOUNDS)
    assert saved is not None
    assert (saved.generation, saved.mark, saved.totals) == (generation + 1, None, None)


def test_totals_saved_with_other_bounds_are_not_used(seeded, monkeypatch):
    clock = ManualClock(at(200))
    collector(seeded, clock).exposition()
    with seeded.engine.db.read() as tx:
        assert tx.saved_totals(SAVED, {**BOUNDS, "duration": (1.0,)}).totals is None
        assert tx.saved_totals(SAVED, BOUNDS).totals is not None


def fresh_totals(pilot: Any, now: float) -> Totals:
    with pilot.engine.db.read() as tx:
        return tx.metric_totals(None, now + 86400, BOUNDS)


@pytest.mark.parametrize("seed_", range(4))
def test_saved_and_running_totals_equal_the_history_summed_afresh(pilot, seed_):
    """Random histories: writes (some dated far behind), scrapes, restarts, rebuilds."""
    pilot.config(CONFIG)
    rng = random.Random(seed_)
    clock = ManualClock(at(10))
    running = collector(pilot, clock)
    for _ in range(25):
        roll = rng.random()
        now_hours = (clock.now() - at(0)).total_seconds() / HOUR
        if roll < 0.45:  # a deployment ends: now, or (a third of the time) long ago
            behind = rng.random() < 0.33
            finished = rng.uniform(0, now_hours - 1) if behind else now_hours
            finished = round(finished * 60) / 60  # whole minutes: sums are exact
            with pilot.engine.db.transaction() as tx:
                r = Records(tx)
                service = rng.choice(("api", "web"))
                release = r.release("alice", finished - 0.5, (service, "1.0", SHA["a1"]))
                state = rng.choice(("succeeded", "succeeded", "failed", "rolled_back"))
                environment = rng.choice(("staging", "production"))
                made = r.deployment(release, environment, state, finished - 0.25, finished)
                tx.refresh_delivery([made])
        elif roll < 0.6:  # an incident, maybe opened in the past
            opened = round(rng.uniform(0, now_hours) * 60) / 60
            with pilot.engine.db.transaction() as tx:
                Records(tx).incident(rng.choice(("api", "web")), opened, now_hours, None)
        elif roll < 0.65:
            with pilot.engine.db.transaction() as tx:
                tx.rebuild_delivery()
        elif roll < 0.8:  # a restart
            running = collector(pilot, clock)
        clock.advance(rng.choice((60, 600, 3600, 5 * 3600)))
        now = clock.now().timestamp()
        found = {k: v for k, v in samples(running.exposition().decode()).items()}
        expected = fresh_totals(pilot, now)
        assert stable(found) == stable(samples(expected_exposition(pilot, clock, expected)))


def expected_exposition(pilot: Any, clock: ManualClock, totals: Totals) -> str:
    """The exposition a collector gives with ``totals`` as its whole history."""

    class Fixed(DeliveryCollector):
        def _totals(self, tx: Any, now: float) -> Totals:
            return totals

    return Fixed(Engine(pilot.engine.db, clock=clock)).exposition().decode()


def test_a_scrape_saves_at_most_every_save_every_seconds_of_history(seeded):
    clock = ManualClock(at(200))
    running = DeliveryCollector(Engine(seeded.engine.db, clock=clock), lag=600)
    running.exposition()

    def mark() -> float | None:
        with seeded.engine.db.read() as tx:
            return tx.saved_totals(SAVED).mark

    first = mark()
    clock.advance(timedelta(minutes=30).total_seconds())
    running.exposition()
    assert mark() == first
    clock.advance(timedelta(minutes=31).total_seconds())
    running.exposition()
    assert mark() == at(200).timestamp() - 600 + 61 * 60
