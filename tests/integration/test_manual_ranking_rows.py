"""The manual-step ranking from ``delivery_manual`` equals the ranking of the nodes.

The ranking reads the manual step runs of finished deployments from
``delivery_manual`` (written as a deployment ends, derived again by a rebuild,
filled for existing databases by migration 0024): their counts from one pass
over its index per environment, a step's median by walking it. Runs of
deployments still going, and steps still waiting, come from the nodes and are
merged in. Whatever the history (pipelines and runbook runs, finished or still
going, steps signed off, failed or waiting, clocks skewed, deployments ending
later, rebuilds), every scope and period ranks what the nodes themselves rank.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from interlock.storage.metric_coordination import _union_ranks
from interlock.storage.metric_scope import MetricScope
from interlock.storage.schema import delivery_manual, deployments
from tests.integration.test_metrics_db import CONFIG, Records, at
from tests.integration.test_metrics_exposition_days import PROFILE

NUMBERS = itertools.count()  # node keys, unique in a deployment
minutes = st.integers(min_value=0, max_value=6 * 24 * 60)
manual = st.tuples(
    st.sampled_from(("api/smoke", "api/sign", "web/smoke", "confirm")),
    st.sampled_from(("succeeded", "succeeded", "failed", "waiting")),
    minutes,  # started
    st.integers(min_value=-30, max_value=26 * 60),  # took (negative: a skewed clock)
)
pipeline = st.tuples(
    st.just("pipeline"),
    st.sampled_from(("staging", "production")),
    st.booleans(),  # finished (else still going)
    st.lists(manual, max_size=4),
)
runbook = st.tuples(st.just("runbook"), st.booleans(), st.lists(manual, max_size=3))
finish = st.tuples(st.just("finish"), st.integers(min_value=0), minutes)  # one going ends
rebuild = st.tuples(st.just("rebuild"))
history = st.lists(st.one_of(pipeline, pipeline, runbook, finish, rebuild), min_size=1, max_size=10)
edge = st.one_of(st.none(), st.integers(min_value=-2 * 24 * 60, max_value=8 * 24 * 60))


def apply(pilot: Any, going: list[int], step: tuple[Any, ...]) -> None:
    with pilot.engine.db.transaction() as tx:
        r = Records(tx)
        if step[0] in ("pipeline", "runbook"):
            finished = step[-2]
            steps = step[-1]
            last = max([s[2] + max(s[3], 0) for s in steps] or [0]) / 60 + 1
            if step[0] == "pipeline":
                release = r.release("alice", 0, ("api", "1.0", None))
                state = "succeeded" if finished else "running"
                found = r.deployment(release, step[1], state, 0, last if finished else None)
            else:
                found = r.runbook_run(0, last if finished else None)
            used: set[str] = set()
            for name, state, started, took in steps:
                ends = None if state == "waiting" else (started + took) / 60
                key = name if name not in used else f"{name}-{next(NUMBERS)}"
                used.add(key)
                r.node(
                    found,
                    key,
                    started / 60,
                    ends,
                    executor="manual",
                    state=state,
                )
            if finished:
                tx.refresh_delivery([found], ended=[found])
            else:
                going.append(found)
        elif step[0] == "finish" and going:
            found = going.pop(step[1] % len(going))
            tx.conn.execute(
                update(deployments)
                .where(deployments.c.id == found)
                .values(finished_at=at(step[2] / 60 + 200), state="succeeded")
            )
            tx.refresh_delivery([found], ended=[found])
        elif step[0] == "rebuild":
            tx.rebuild_delivery()


def ranked(pilot: Any, scope: MetricScope, *, rows: bool, limit: int) -> list[Any]:
    with pilot.engine.db.read() as tx:
        facts = tx.delivery_facts(scope)
        found = facts._manual_steps_of_nodes(limit) if rows else facts.manual_steps(limit)
    return [
        (
            rank.name,
            runbook,
            waiting,
            rank.runs,
            rank.signed_off,
            None if rank.median_signoff is None else round(rank.median_signoff, 6),
            round(rank.total_signoff, 6),
        )
        for rank, runbook, waiting in found
    ]


@PROFILE
@given(
    steps=history,
    ranges=st.lists(st.tuples(edge, edge), min_size=1, max_size=3),
    limit=st.sampled_from((1, 2, 50)),
)
def test_ranking_from_the_manual_runs_equals_the_nodes_ranked(pilot, steps, ranges, limit):
    if not getattr(pilot, "_manual_ranking", False):  # once per database
        pilot.config(CONFIG)
        pilot._manual_ranking = []
    going: list[int] = pilot._manual_ranking
    for step in steps:
        apply(pilot, going, step)
    for start, end in [(None, None), *ranges]:
        since = at(-1000) if start is None else at(start / 60)
        until = at(1000) if end is None else at(end / 60)
        if until <= since:
            continue
        for environments, unplaced in (
            (("production",), True),
            (("production",), False),
            (("staging", "production"), True),
        ):
            scope = MetricScope(environments, since, until, unplaced_runbooks=unplaced)
            expected = ranked(pilot, scope, rows=True, limit=limit)
            assert ranked(pilot, scope, rows=False, limit=limit) == expected


def test_a_rebuild_and_the_engine_write_the_same_manual_runs(pilot):
    """What a deployment's end writes is what a rebuild derives (a signed-off run's wait,
    0 for a skewed clock, NULL for one that failed)."""
    pilot.config(CONFIG)
    going: list[int] = []
    steps = [
        ("api/smoke", "succeeded", 10, 30),
        ("api/sign", "failed", 20, 5),
        ("confirm", "succeeded", 40, -10),
    ]
    apply(pilot, going, ("pipeline", "production", True, steps))
    apply(pilot, going, ("runbook", True, steps[2:]))
    apply(pilot, going, ("pipeline", "staging", False, steps))  # going: none written

    def runs() -> list[tuple[Any, ...]]:
        t = delivery_manual.c
        with pilot.engine.db.read() as tx:
            found = tx.conn.execute(
                select(t.environment, t.runbook, t.service, t.name, t.finished_at, t.wait)
            ).all()
        return sorted(tuple(row) for row in found)

    kept = runs()
    assert [(e, rb, s, n, w) for e, rb, s, n, _, w in kept] == [
        ("", "rotate-keys", "", "confirm", 0.0),
        ("production", "", "", "confirm", 0.0),
        ("production", "", "api", "sign", None),
        ("production", "", "api", "smoke", 30 * 60.0),
    ]
    with pilot.engine.db.transaction() as tx:
        tx.rebuild_delivery()
    assert runs() == kept


def test_union_ranks_merge_the_live_values_exactly():
    """Any ranks of indexed values merged with a few others are the sorted union's."""
    import random

    rng = random.Random(5)
    for _ in range(300):
        values = (rng.choice((rng.randint(0, 9), rng.random())) for _ in range(rng.randint(0, 12)))
        indexed = sorted(values)
        live = [rng.choice((rng.randint(0, 9), rng.random())) for _ in range(rng.randint(0, 4))]
        union = sorted(indexed + live)
        if not union:
            continue
        for low in range(len(union)):
            high = min(low + rng.randint(0, 1), len(union) - 1)

            def walk(offset: int, count: int, indexed: list[float] = indexed) -> list[float]:
                return indexed[offset : offset + count]

            found = _union_ranks(walk, bool(indexed), live, low, high)
            assert found == (union[low], union[high])


def test_the_ranking_numbers_no_runs_and_walks_each_step_once(pilot):
    """The ranking of finished deployments' steps reads ``delivery_manual``: a pass per
    environment, the live runs once, a walk per step ranked; nothing numbers or joins
    the history's runs (the ranking before numbered every manual run in a window)."""
    from sqlalchemy import event

    pilot.config(CONFIG)
    going: list[int] = []
    steps = [("api/smoke", "succeeded", 10, 30), ("web/smoke", "succeeded", 20, 5)]
    for _ in range(3):
        apply(pilot, going, ("pipeline", "production", True, steps))
    since, until = at(-1000), at(1000)
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()).lower())

    engine = pilot.engine.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        scope = MetricScope(("production",), since, until, unplaced_runbooks=True)
        found = ranked(pilot, scope, rows=False, limit=50)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [(name, runs, signed) for name, _, _, runs, signed, _, _ in found] == [
        ("api/smoke", 3, 3),
        ("web/smoke", 3, 3),
    ]
    assert not [s for s in sent if "row_number" in s or "over (" in s], sent
    read = [s for s in sent if "delivery_manual" in s]
    # a pass for production and one for runbook runs of no environment; a walk per step
    assert len(read) == 2 + 2, sent
    assert len([s for s in sent if " nodes" in s]) == 1, sent  # the live runs, once
