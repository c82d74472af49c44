"""The exposition's history read from per-day sums equals the history summed afresh.

``/metrics`` reads the whole UTC days of a range from their counts
(``metric_days``, kept by triggers on the rows they count, and counted for
existing databases by migration 0020) and only the partial days at its ends
from the rows. Whatever the history
(deployments of one or two services, every outcome, commits first deployed out
of order, deployments, incidents and steps written or moved behind others,
rebuilds), the totals over any range are the ones summed from the rows.
"""

from __future__ import annotations

import itertools
import math
import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, inspect, select, text, update

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.exposition import BOUNDS, DeliveryCollector
from interlock.storage import metric_days as metric_days_module
from interlock.storage.db import Database
from interlock.storage.metric_days import compact_metric_days
from interlock.storage.metric_rollups import IndexedSample
from interlock.storage.metric_scope import MetricScope
from interlock.storage.metric_totals import Histogram, Totals
from interlock.storage.migrate import head_revision, upgrade
from interlock.storage.schema import (
    delivery_facts,
    delivery_gates,
    deployments,
    incidents,
    metric_days,
    nodes,
)
from tests.integration.test_metrics_db import CONFIG, SHA, Records, at
from tests.integration.test_migrations import _downgrade

EXAMPLES = int(os.environ.get("INTERLOCK_HYPOTHESIS_EXAMPLES", "25"))
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # the database keeps what earlier examples wrote, so a shrunk example shows little
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
COMMITS = ("a1", "a2", "a3", "w1")
NUMBERS = itertools.count()  # node keys, unique in a deployment
minutes = st.integers(min_value=0, max_value=6 * 24 * 60)  # six days, whole minutes: exact sums
ON_BOUNDS = sorted({int(b // 60) for found in BOUNDS.values() for b in found if b % 60 == 0})
# how long something took: often exactly on a histogram bound
took = st.one_of(st.integers(min_value=0, max_value=26 * 60), st.sampled_from(ON_BOUNDS))

deploy = st.tuples(
    st.just("deploy"),
    st.sampled_from((("api",), ("web",), ("api", "web"))),
    st.sampled_from(("staging", "production")),
    st.sampled_from(("succeeded", "succeeded", "failed", "rolled_back", "cancelled")),
    st.sampled_from(COMMITS),
    minutes,  # finished
    took,  # how long it ran (some over a day)
    st.booleans(),  # a deploy step ran (else a failure counts as not reached)
    st.booleans(),  # a rollback rather than a deploy
)
move = st.tuples(st.just("move"), st.integers(min_value=0), minutes)  # ended at another time
rebuild = st.tuples(st.just("rebuild"))
incident = st.tuples(
    st.just("incident"),
    st.sampled_from(("api", "web")),
    st.sampled_from(("staging", "production")),
    minutes,  # opened
    st.one_of(st.none(), took),  # open for
)
reopen = st.tuples(st.just("reopen"), st.integers(min_value=0), minutes)  # times moved back
step = st.tuples(
    st.just("step"),
    st.sampled_from(("shell", "manual", "approval")),
    st.sampled_from(("succeeded", "failed", "running")),
    minutes,  # finished
    took,  # how long it took
)
restep = st.tuples(st.just("restep"), st.integers(min_value=0), minutes)  # ended at another time
history = st.lists(
    st.one_of(deploy, deploy, deploy, move, rebuild, incident, reopen, step, step, restep),
    min_size=1,
    max_size=12,
)
edge = st.one_of(st.none(), st.integers(min_value=-2 * 24 * 60, max_value=8 * 24 * 60))


def apply(pilot: Any, made: list[int], step: tuple[Any, ...]) -> None:
    with pilot.engine.db.transaction() as tx:
        if step[0] == "deploy":
            _, services, environment, state, sha, finished, took, ran, rollback = step
            r = Records(tx)
            ends, begins = finished / 60, (finished - took) / 60
            version = f"0.{COMMITS.index(sha)}"
            items = [(service, version, SHA[sha]) for service in services]
            kind = "rollback" if rollback else "deploy"
            release = r.release("alice", begins - 0.5, *items, kind=kind)
            found = r.deployment(release, environment, state, begins, ends, kind=kind)
            if ran:
                r.node(found, f"{services[0]}/roll-out", begins, ends, state=state)
            made.append(found)
            tx.refresh_delivery([found])
        elif step[0] == "move" and made:
            found = made[step[1] % len(made)]
            ends = at(step[2] / 60)
            tx.conn.execute(
                update(deployments).where(deployments.c.id == found).values(finished_at=ends)
            )
            tx.refresh_delivery([found])
        elif step[0] == "rebuild":
            tx.rebuild_delivery()
        elif step[0] == "incident":
            _, service, environment, opened, took = step
            ends = None if took is None else (opened + took) / 60
            Records(tx).incident(service, opened / 60, ends, None, environment=environment)
        elif step[0] == "reopen":  # an incident's times written again, by hand
            found = tx.conn.execute(select(incidents.c.id).order_by(incidents.c.id)).scalars()
            ids = list(found)
            if ids:
                chosen = ids[step[1] % len(ids)]
                opened = at(step[2] / 60)
                tx.conn.execute(
                    update(incidents)
                    .where(incidents.c.id == chosen)
                    .values(opened_at=opened, resolved_at=opened + timedelta(minutes=step[1] % 900))
                )
        elif step[0] == "step" and made:  # a step or gate of the last deployment
            _, executor, state, finished, took = step
            key = (
                f"gate/approval-{next(NUMBERS)}"
                if executor == "approval"
                else f"api/check-{next(NUMBERS)}"
            )
            ends = None if state == "running" else finished / 60
            r = Records(tx)
            r.node(made[-1], key, (finished - took) / 60, ends, executor=executor, state=state)
            tx.refresh_delivery([made[-1]])  # (approval waits are derived when it ends)
        elif step[0] == "compact":  # whole blocks before a day moved into metric_blocks
            compact_metric_days(tx.conn, math.floor(at(step[1] / 60).timestamp() / 86400))
        elif step[0] == "restep":  # a step's end written again, by hand
            found = tx.conn.execute(select(nodes.c.id).order_by(nodes.c.id)).scalars()
            ids = list(found)
            if ids:
                chosen = ids[step[1] % len(ids)]
                tx.conn.execute(
                    update(nodes)
                    .where(nodes.c.id == chosen)
                    .values(finished_at=at(step[2] / 60), state="succeeded")
                )
                owner = tx.conn.execute(
                    select(nodes.c.deployment_id).where(nodes.c.id == chosen)
                ).scalar_one()
                tx.refresh_delivery([owner])


def production(services: tuple[str, ...], state: str, sha: str, finished: int) -> tuple[Any, ...]:
    """A deployment to production that ran 30 minutes up to ``finished`` (minutes)."""
    return ("deploy", services, "production", state, sha, finished, 30, True, False)


def committed(pilot: Any) -> None:
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        for number, sha in enumerate(COMMITS):  # (the last committed after some deploys)
            for service in ("api", "web"):
                r.artifact(service, f"0.{number}", SHA[sha], 30 - 10 * number)


def rows_and_days(pilot: Any, start: float | None, end: float | None) -> tuple[Totals, Totals]:
    with pilot.engine.db.read() as tx:
        days = tx.metric_totals(start, end, BOUNDS)
        rows = tx.metric_totals(start, end, BOUNDS, rollups=False)
    return days, rows


def shown(totals: Totals) -> dict[str, Any]:
    """Every total (sums of whole minutes, so exact however they were added up)."""
    return {
        name: {k: vars(h) if isinstance(h, Histogram) else h for k, h in found.items()}
        for name, found in vars(totals).items()
    }


def apply_all(pilot: Any, steps: list[tuple[Any, ...]]) -> None:
    """Apply ``steps`` to the history this database holds (set up once per database)."""
    if not getattr(pilot, "_exposition_days", False):  # once per database
        pilot.config(CONFIG)
        committed(pilot)
        pilot._exposition_days = []
    made: list[int] = pilot._exposition_days
    for step in steps:
        apply(pilot, made, step)


@PROFILE
@given(steps=history, ranges=st.lists(st.tuples(edge, edge), min_size=1, max_size=4))
def test_totals_from_the_days_equal_the_rows_summed_afresh(pilot, steps, ranges):
    apply_all(pilot, steps)
    for start, end in [(None, None), *ranges]:
        since = None if start is None else at(start / 60).timestamp()
        until = None if end is None else at(end / 60).timestamp()
        days, rows = rows_and_days(pilot, since, until)
        assert shown(days) == shown(rows)


compact = st.tuples(st.just("compact"), minutes)
moving = st.lists(
    st.one_of(deploy, deploy, move, rebuild, incident, reopen, step, restep, compact, compact),
    min_size=1,
    max_size=12,
)


@PROFILE
@given(steps=moving, ranges=st.lists(st.tuples(edge, edge), min_size=1, max_size=4))
def test_totals_with_past_blocks_moved_equal_the_rows_summed_afresh(
    pilot, monkeypatch, steps, ranges
):
    """Blocks of two days, so that six days of history have some to move; changes
    behind a moved block and ranges that cut one still sum what the rows do."""
    monkeypatch.setattr(metric_days_module, "BLOCK", 2)
    test_totals_from_the_days_equal_the_rows_summed_afresh.hypothesis.inner_test(
        pilot, steps, ranges
    )


def test_a_saved_mark_moves_the_blocks_before_it_and_the_next_sum_reads_them(pilot):
    """The totals saved, the blocks before the mark's day are rows of metric_blocks; a
    count changed there behind the rows' back shows in the next first scrape ever."""
    pilot.config(CONFIG)
    committed(pilot)
    made: list[int] = []
    for finished in (60, 3 * 24 * 60 + 30):
        apply(pilot, made, production(("api",), "succeeded", "a1", finished))
    clock = ManualClock(at(60 * 24))  # 60 days on: the deployments' block is past
    db = pilot.engine.db
    collector = DeliveryCollector(Engine(db, clock=clock))
    before = collector.exposition().decode()
    with db.read() as tx:
        moved = tx.conn.execute(text("SELECT COUNT(*), SUM(events) FROM metric_blocks")).one()
        left = tx.conn.execute(
            text("SELECT COUNT(*) FROM metric_days WHERE day < :d"),
            {"d": math.floor(at(0).timestamp() / 86400) + 28},
        ).scalar_one()
    assert moved[0] > 0 and left == 0
    with db.transaction() as tx:
        tx.conn.execute(
            text("UPDATE metric_blocks SET events = events + 5 WHERE family = 'deployments'")
        )
        tx.forget_totals()
    line = 'interlock_deployments_total{environment="production",kind="deploy",outcome="succeeded",service="api"}'  # noqa: E501
    assert f"{line} 2.0" in before
    clock.advance(60)
    scraped = DeliveryCollector(Engine(db, clock=clock)).exposition().decode()
    with db.read() as tx:
        rows = tx.conn.execute(
            text("SELECT COUNT(*) FROM metric_blocks WHERE family = 'deployments'")
        ).scalar_one()
    assert f"{line} {2 + 5 * rows}.0" in scraped


def test_the_first_scrape_ever_reads_whole_days_from_their_counts(pilot):
    """A day's count changed behind its rows' back shows: whole days are not read from rows."""
    pilot.config(CONFIG)
    committed(pilot)
    made: list[int] = []
    for finished in (60, 3 * 24 * 60 + 30):
        apply(pilot, made, production(("api",), "succeeded", "a1", finished))
    clock = ManualClock(at(5 * 24))
    with pilot.engine.db.transaction() as tx:
        tx.conn.execute(
            text("UPDATE metric_days SET events = events + 5 WHERE family = 'deployments'")
        )
    scraped = DeliveryCollector(Engine(pilot.engine.db, clock=clock)).exposition().decode()
    line = 'interlock_deployments_total{environment="production",kind="deploy",outcome="succeeded",service="api"}'  # noqa: E501
    assert f"{line} 12.0" in scraped  # 2 deployments, 5 more on each of their 2 days


def test_migration_0020_sums_the_days_of_existing_facts(pilot):
    pilot.config(CONFIG)
    committed(pilot)
    made: list[int] = []
    for finished, state in ((60, "succeeded"), (26 * 60, "failed"), (50 * 60, "succeeded")):
        apply(pilot, made, production(("api", "web"), state, "a2", finished))
        apply(pilot, made, ("step", "approval", "succeeded", finished - 40, 90))
        apply(pilot, made, ("step", "manual", state, finished - 5, 20))
        apply(pilot, made, ("incident", "web", "production", finished + 10, 200))
    db = pilot.engine.db
    before = rows_and_days(pilot, None, None)[1]
    _downgrade(db, "0018")
    with db.engine.connect() as conn:
        assert not inspect(conn).has_table("metric_days")
    assert upgrade(db) == ("0018", head_revision())
    days, rows = rows_and_days(pilot, None, at(48).timestamp() + 1)
    assert all(shown(rows).values())  # something of every kind
    assert shown(days) == shown(rows)
    assert shown(rows_and_days(pilot, None, None)[0]) == shown(before)


def finish(tx: Any, number: int) -> None:
    """The facts of one deployment of api to production and its approval gate, as a
    finishing worker writes them: every one on the same day, labels and bucket."""
    ends = at(2).timestamp() + number
    tx.conn.execute(
        delivery_facts.insert().values(
            id=number, deployment_id=number, position=0, service="api",
            environment="production", kind="deploy", state="succeeded",
            started_at=ends - 60, finished_at=ends, day=math.floor(ends / 86400),
            commit_key=f"c{number}", first=1, lead=600.0,
        )
    )  # fmt: skip
    tx.conn.execute(
        delivery_gates.insert().values(
            node_id=number, deployment_id=number, environment="production",
            finished_at=ends - 70, wait=30.0,
        )
    )  # fmt: skip


def shards(pilot: Any) -> dict[str, set[int]]:
    """The shards each family counts on."""
    m = metric_days.c
    with pilot.engine.db.read() as tx:
        found: dict[str, set[int]] = {}
        for family, shard in tx.conn.execute(select(m.family, m.shard)):
            found.setdefault(family, set()).add(shard)
    return found


DELIVERY_FAMILIES = ("deployments", "durations", "lead_times", "approval_waits")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_deployments_finishing_at_once_do_not_wait_on_one_days_count(pilot):
    """One transaction has written a finished deployment's facts and gate and not
    committed: another's, of the same environment, day and buckets, is written and
    committed meanwhile (each counts on its own shard of the day's rows)."""
    other = Database(pilot.engine.db.url)
    try:
        with pilot.engine.db.transaction() as first:
            finish(first, 1)
            with other.transaction() as second:
                second.conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                finish(second, 2)
    finally:
        other.dispose()
    days, rows = rows_and_days(pilot, None, None)
    assert shown(days) == shown(rows)
    assert days.durations[("production",)].count == 2
    found = shards(pilot)
    assert all(found[family] == {1, 2} for family in DELIVERY_FAMILIES), found


def test_migration_0023_shards_the_delivery_counts_on_postgresql_only(pilot):
    """Downgraded, every key counts on one row again (the shards added up); upgraded,
    new counts spread again on PostgreSQL; the totals never move. SQLite: one row."""
    with pilot.engine.db.transaction() as tx:
        for number in range(1, 4):
            finish(tx, number)
    before = shown(rows_and_days(pilot, None, None)[1])
    many = {1, 2, 3} if pilot.engine.db.engine.dialect.name == "postgresql" else {0}
    assert {f: shards(pilot)[f] for f in DELIVERY_FAMILIES} == dict.fromkeys(
        DELIVERY_FAMILIES, many
    )
    db = pilot.engine.db
    _downgrade(db, "0022")
    assert {f: shards(pilot)[f] for f in DELIVERY_FAMILIES} == dict.fromkeys(DELIVERY_FAMILIES, {0})
    with pilot.engine.db.transaction() as tx:  # counted on one row by the old triggers
        finish(tx, 4)
    assert {f: shards(pilot)[f] for f in DELIVERY_FAMILIES} == dict.fromkeys(DELIVERY_FAMILIES, {0})
    assert upgrade(db) == ("0022", head_revision())
    with pilot.engine.db.transaction() as tx:
        finish(tx, 5)
        tx.conn.execute(delete(delivery_facts).where(delivery_facts.c.id == 1))
        tx.conn.execute(delete(delivery_gates).where(delivery_gates.c.node_id == 1))
    # on PostgreSQL id 1 is taken away from shard 1, which no longer holds it: only
    # the sum over the shards is exact
    expected = {0, 1, 5} if many != {0} else {0}
    assert {f: shards(pilot)[f] for f in DELIVERY_FAMILIES} == dict.fromkeys(
        DELIVERY_FAMILIES, expected
    )
    days, rows = rows_and_days(pilot, None, None)
    assert shown(days) == shown(rows)
    assert days.durations[("production",)].count == 4
    assert shown(rows) != before  # (two in, one out)


QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def quantiles(pilot: Any, scope: MetricScope) -> dict[str, list[float]]:
    with pilot.engine.db.read() as tx:
        facts = tx.delivery_facts(scope)
        found = {}
        for name, durations in (
            ("lead", facts.lead_times()),
            ("approval", facts.approval_waits()),
        ):
            sample = durations.sample
            found[name] = [sample.quantile(q) for q in QUANTILES] if len(sample) else []
    return found


@PROFILE
@given(steps=moving, ranges=st.lists(st.tuples(edge, edge), min_size=1, max_size=4))
def test_quantiles_walked_from_their_bucket_equal_the_walk_of_the_index(
    pilot, monkeypatch, steps, ranges
):
    """A lead time's or approval wait's quantile walked from the nearer end of its
    histogram bucket (the buckets counted from the exposition's days and blocks, the
    partial days and cut blocks from the rows) is the one the whole index walk finds."""
    monkeypatch.setattr(metric_days_module, "BLOCK", 2)
    use = IndexedSample._use

    def exact(sample: IndexedSample, bounds: Any, counts: list[int]) -> list[int]:
        assert sum(counts) == sample.n  # every value in one bucket: none missed or twice
        return use(sample, bounds, counts)

    monkeypatch.setattr(IndexedSample, "_use", exact)
    apply_all(pilot, steps)
    for start, end in [(None, None), *ranges]:
        since = at(-1000) if start is None else at(start / 60)
        until = at(1000) if end is None else at(end / 60)
        if until <= since:
            continue
        scope = MetricScope(("production",), since, until, unplaced_runbooks=True)
        bucketed = quantiles(pilot, scope)
        with monkeypatch.context() as plain:
            plain.setattr(IndexedSample, "bucketed", lambda *_, **__: None)
            assert quantiles(pilot, scope) == bucketed
