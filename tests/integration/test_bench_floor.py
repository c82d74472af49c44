"""bench/engine.py's storage floor replays the statements of one engine step.

The floor claims to be "the SQL of a step alone": if the engine's step gains
or loses a statement, this fails until the floor is brought in step.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

from interlock.engine.steps import claim, complete, prepare
from interlock.executors.base import StepResult

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: a, uses: noop, idempotent: true}
      - {name: b, uses: noop, idempotent: true}
      - {name: c, uses: noop, idempotent: true}
"""


def _floor_statements() -> list[str]:
    path = Path(__file__).resolve().parents[2] / "bench" / "engine.py"
    spec = importlib.util.spec_from_file_location("bench_engine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [sql for sql, _ in module._FLOOR_STEP]


def _shape(sql: str) -> tuple[str, str]:
    """(verb, first table): what a statement does, whatever its columns."""
    verb = sql.split()[0].upper()
    found = re.search(r"\b(?:FROM|UPDATE|INTO)\s+(\w+)", sql, re.IGNORECASE)
    return verb, found.group(1) if found else ""


def test_the_floor_runs_what_a_step_in_the_middle_of_a_pipeline_runs(pilot):
    engine = pilot.engine
    pilot.config(CONFIG)
    pilot.release("api@1.0")
    cache: dict[int, Any] = {}  # a worker keeps what never changes about a release

    def succeed_and_claim_next(claimed: Any) -> Any:  # what a worker does
        def work(tx: Any) -> Any:
            complete(tx, engine, prepare(engine, *claimed), StepResult(ok=True))
            return claim(tx, engine, "host:1:w-0", cache)

        return engine.db.run(work)

    first = engine.db.run(lambda tx: claim(tx, engine, "host:1:w-0", cache))
    second = succeed_and_claim_next(first)
    assert second[0].key == "api/b"
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.upper().startswith("BEGIN"):
            sent.append(statement)

    event.listen(engine.db.engine, "before_cursor_execute", seen)
    try:  # api/b succeeds, api/c is made ready and taken: one step, mid-pipeline
        third = succeed_and_claim_next(second)
    finally:
        event.remove(engine.db.engine, "before_cursor_execute", seen)
    assert third[0].key == "api/c"
    expected = Counter(map(_shape, _floor_statements()))
    if engine.db.dialect == "postgresql":
        # The floor is SQLite's step. PostgreSQL locks the deployment row first and counts
        # its nodes after, in a statement of their own (storage/nodes.py: progress_of),
        # and chains its audit events in one statement (storage/audit.py): the head
        # locked, the events inserted and the head moved. It finds, locks and leases the
        # next ready node in one statement (storage/nodes.py: claim_node, a call of the
        # interlock_claim function of migration 0026).
        expected["SELECT", "nodes"] -= 1
        expected["UPDATE", "nodes"] -= 1
        expected["SELECT", "interlock_claim"] += 1
        expected["SELECT", "deployments"] += 1
        expected["INSERT", "audit_events"] -= 1
        expected["UPDATE", "audit_head"] -= 1
        expected["WITH", "audit_head"] += 1
        expected = +expected
    assert Counter(map(_shape, sent)) == expected
