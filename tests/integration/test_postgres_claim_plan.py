"""History does not slow the queue: with 100,000 finished steps, claims use the partial indexes.

The statements are the ones the engine runs (captured as they execute), and
PostgreSQL explains them with the same parameters.
"""

from __future__ import annotations

import importlib
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from interlock.engine.steps import claim
from tests.support.postgres import pg_query

claim_function = importlib.import_module(
    "interlock.storage.migrations.versions.0026_claim_function"
)

pytestmark = pytest.mark.postgres

HISTORY = 100_000

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: a, run: "true", idempotent: true}
      - {name: b, run: "true", idempotent: true}
"""

_FINISHED = """
INSERT INTO nodes (deployment_id, key, kind, service, name, phase, position, needs, unmet,
                   dependents, executor, spec, timeout, max_attempts, backoff, idempotent,
                   state, attempt, fence, cancel_requested, not_before, started_at, finished_at)
SELECT %s, 'history/' || g, 'step', 'api', 'h' || g, 'deploy', g + 10, '[]', 0,
       '[]', 'shell', '{}', 600, 1, 5, true,
       CASE WHEN g %% 10 = 0 THEN 'failed' ELSE 'succeeded' END, 1, 1, false,
       extract(epoch FROM now()) - g, extract(epoch FROM now()) - g,
       extract(epoch FROM now()) - g + 1
FROM generate_series(1, %s) AS g
"""


class Statements:
    """Every SQL statement run on the engine while active, with its parameters."""

    def __init__(self, sa_engine: Any) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.sa_engine = sa_engine

    def __enter__(self) -> Statements:
        event.listen(self.sa_engine, "before_cursor_execute", self._capture)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.sa_engine, "before_cursor_execute", self._capture)

    def _capture(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, parameters))

    def find(self, *fragments: str) -> tuple[str, Any]:
        for statement, parameters in self.seen:
            if all(f in statement for f in fragments):
                return statement, parameters
        raise AssertionError(f"no statement with {fragments}: {[s for s, _ in self.seen]}")


def _plan(db, statement: str, parameters: Any, analyze: bool = False) -> dict[str, Any]:
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"EXPLAIN ({options}) {statement}", parameters)
        found = cursor.fetchone()[0]
        raw.rollback()
    finally:
        raw.close()
    return (json.loads(found) if isinstance(found, str) else found)[0]


def _indexes(plan: dict[str, Any]) -> set[str]:
    found = set()
    stack = [plan["Plan"]]
    while stack:
        node = stack.pop()
        if "Index Name" in node:
            found.add(node["Index Name"])
        stack.extend(node.get("Plans", []))
    return found


def _claim_ms(pilot, rounds: int = 50) -> float:
    """Median time of a claim transaction that finds nothing due (the idle workers' query)."""
    engine = pilot.engine
    later = engine.clock.now() - timedelta(days=365)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with engine.db.transaction() as tx:
            tx.claim_node("probe", later, 5.0)
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2] * 1000


def _insert_history(url: str, deployment_id: int) -> None:
    """HISTORY finished nodes in one statement, with the step-run day rollup's trigger off.

    The trigger adds each row to one of a few ``metric_days`` rows: 100,000 updates of
    the same rows in one transaction walk ever longer chains of row versions (4 minutes
    on a busy machine), and the rollups play no part in how a claim is planned.
    """
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(_FINISHED, (deployment_id, HISTORY))  # type: ignore[arg-type]


class _Rollback(Exception):
    pass


def test_claims_and_recovery_use_the_partial_indexes_whatever_the_history(
    backend, pilot, database_url, capsys
):
    if backend != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    engine = pilot.engine
    pilot.config(CONFIG)
    for n in range(3):
        pilot.release(f"api@1.{n}")  # ready nodes, the only ones a claim may find
    empty_ms = _claim_ms(pilot)
    with engine.db.read() as tx:
        deployment_id = tx.list_deployments(limit=1)[0].id
    _insert_history(database_url, deployment_id)
    pg_query(database_url, "ANALYZE nodes")
    assert pg_query(database_url, "SELECT count(*) FROM nodes")[0][0] >= HISTORY

    with Statements(engine.db.engine) as run, pytest.raises(_Rollback):
        with engine.db.transaction() as tx:
            tx.expired_leases(engine.clock.now())
            tx.next_ready_at()
            assert claim(tx, engine, "probe-0") is not None
            raise _Rollback  # leave the database as it was
    claim_sql = run.find("FROM interlock_claim(")
    recovery_sql = run.find("FROM nodes", "lease_expires <")
    next_sql = run.find("min(nodes.not_before)")

    # The claim's search runs in the function (migration 0026): its query, explained
    # with the claim's time.
    candidates = claim_function.CANDIDATES.replace("p_now", "%(now)s").replace(
        "tried", "'{}'::bigint[]"
    )
    claim_plan = _plan(engine.db, candidates, {"now": claim_sql[1]["now"]})
    assert "ix_nodes_ready" in _indexes(claim_plan), json.dumps(claim_plan, indent=1)
    assert "ix_nodes_leased" in _indexes(_plan(engine.db, *recovery_sql))
    assert "ix_nodes_ready" in _indexes(_plan(engine.db, *next_sql))

    analyzed = _plan(engine.db, *claim_sql, analyze=True)
    buffers = analyzed["Plan"].get("Shared Hit Blocks", 0) + analyzed["Plan"].get(
        "Shared Read Blocks", 0
    )
    assert buffers < 50, buffers  # a handful of index pages, not the 100k-row table
    full_ms = _claim_ms(pilot)
    with capsys.disabled():
        print(
            f"\nclaim with {HISTORY:,} finished nodes: plan uses ix_nodes_ready, "
            f"{buffers} buffers, {analyzed['Execution Time']:.3f} ms in the server; "
            f"empty-handed claim transaction {empty_ms:.2f} ms before the history, "
            f"{full_ms:.2f} ms after"
        )
