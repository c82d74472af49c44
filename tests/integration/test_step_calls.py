"""What one step of a pipeline costs the worker in Python, counted, not timed.

A step in the middle of a sequential pipeline (bench/engine.py's workload A):
its executor run, its outcome recorded and the next step leased to the same
worker, in one transaction, as engine/worker.py does it with other workers idle.
cProfile counts every Python call (and every call into C), which does not move
with the machine's load as time does.
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

from interlock.engine.steps import claim, execute, prepare
from interlock.engine.wakeup import Slot
from interlock.engine.worker import WorkerPool

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
"""
STEPS = 6

# The calls of one such step (prepare, execute, record, lease the next), measured at
# 366 on SQLite, 438 before a write transaction's BEGIN and COMMIT went to the driver's
# connection without SQLAlchemy's transaction object, states were looked up in a dict
# rather than through their Enum's Python calls and JSON columns read by load_json
# itself rather than through SQLAlchemy's two wrappers, 563 before the statements every
# step runs picked their parameters in C and looked up neither their driver connection
# nor their listeners, and before timestamps and JSON columns were read in one call
# each. PostgreSQL's (about 2,500, psycopg's own Python included) is held where it is.
MOST_CALLS = {"sqlite": 380, "postgresql": 2600}


def _step_calls(pilot: Any) -> tuple[int, list[str]]:
    engine = pilot.engine
    steps = "".join(f"      - {{name: s{i}, uses: noop, idempotent: true}}\n" for i in range(STEPS))
    pilot.config(CONFIG + steps)
    pilot.release("api@1.0")
    pool = WorkerPool(engine, 1)  # not started: this thread is its worker
    pool._idle.enter(Slot("other"))  # another worker is idle, as in the bench
    worker = "host:1:worker-0"
    keys = []
    try:
        claimed = engine.db.run(lambda tx: claim(tx, engine, worker, pool._releases))
        calls = 0
        for n in range(STEPS - 1):
            profiler = cProfile.Profile()
            profiler.enable()
            job = prepare(engine, *claimed)
            result = execute(engine, job)
            claimed, _ = pool._complete(job, result, worker)
            profiler.disable()
            keys.append(claimed[0].key)
            if n == STEPS // 2:  # one in the middle, warm
                calls = sum(row[1] for row in pstats.Stats(profiler).stats.values())
        return calls, keys
    finally:
        engine.db.ready_hooks.remove(pool._hand_over)


def test_a_pipeline_step_costs_the_worker_a_bounded_number_of_python_calls(pilot):
    calls, keys = _step_calls(pilot)
    assert keys == [f"api/s{i}" for i in range(1, STEPS)]  # each leased ahead, in order
    assert 0 < calls <= MOST_CALLS[pilot.engine.db.dialect], calls


def test_a_worker_pool_compiles_the_statements_steps_run_as_it_starts(pilot):
    """Not in its first steps: tens of statements, a few milliseconds each."""
    from sqlalchemy import bindparam, select

    from interlock.storage.base import Prepared
    from interlock.storage.schema import nodes

    fresh = Prepared(select(nodes.c.id).where(nodes.c.id == bindparam("id")))
    pool = WorkerPool(pilot.engine, 1)
    pool.start()
    pool.stop(drain=1)
    assert list(fresh._compiled) == [pilot.engine.db.engine.dialect.name]
