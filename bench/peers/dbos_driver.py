"""The DBOS side of bench/peers/run.py: runs in DBOS's own virtual environment.

    <dbos venv>/bin/python bench/peers/dbos_driver.py /tmp/x/dbos.sqlite

Reads one command a line on stdin (``A 100`` = one workflow of 100 sequential
steps, ``B 200 5`` = 200 workflows of 5 steps started together, ``quit``) and
answers each with one JSON line on stdout: the steps run and the window from
the first step's start to the last step's finish, from DBOS's own
``operation_outputs`` timestamps (milliseconds), as bench/engine.py takes
Interlock's from its ``attempts`` rows. DBOS stays launched between commands,
as Interlock's engine does, so every run after the first is warm.

Durability: the SQLite file is switched to WAL before DBOS opens it (the mode
is stored in the file) and every connection DBOS opens gets
``PRAGMA synchronous=FULL``, Interlock's settings. DBOS on its own leaves
SQLite's defaults (a rollback journal, ``synchronous=FULL``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID
from sqlalchemy import event


@DBOS.step()
def noop_step() -> None:
    """A step that does nothing, as Interlock's ``uses: noop``."""


@DBOS.workflow()
def steps_workflow(count: int) -> int:
    for _ in range(count):
        noop_step()
    return count


def _window(path: str, ids: list[str]) -> tuple[int, float]:
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" for _ in ids)
        row = conn.execute(
            "SELECT count(*), min(started_at_epoch_ms), max(completed_at_epoch_ms)"
            f" FROM operation_outputs WHERE workflow_uuid IN ({marks})",
            ids,
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), (row[2] - row[1]) / 1000.0


def _run(path: str, workflows: int, steps: int) -> dict[str, Any]:
    prefix = uuid.uuid4().hex[:8]
    ids = [f"bench-{prefix}-{n}" for n in range(workflows)]
    handles = []
    for workflow_id in ids:
        with SetWorkflowID(workflow_id):
            handles.append(DBOS.start_workflow(steps_workflow, steps))
    for handle in handles:
        handle.get_result()
    count, seconds = _window(path, ids)
    if count != workflows * steps:
        raise SystemExit(f"DBOS recorded {count} steps, expected {workflows * steps}")
    return {"steps": count, "seconds": seconds}


def _pragmas(engine: sa.Engine) -> dict[str, str]:
    """The settings of a connection DBOS uses, read back from SQLite itself."""
    with engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {
        "journal_mode": str(mode).upper(),
        "synchronous": names.get(int(level or 0), str(level)),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> None:
    path = sys.argv[1]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    # DBOS's own SQLite engine (its _sys_db_sqlite.py) with one pragma more.
    engine = sa.create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA synchronous=FULL")

    config: DBOSConfig = {
        "name": "interlock-bench",
        "system_database_url": f"sqlite:///{path}",
        "system_database_engine": engine,
        "run_admin_server": False,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    from importlib.metadata import version

    print(json.dumps({"ready": True, "version": version("dbos"), **_pragmas(engine)}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "A":
            result = _run(path, 1, int(words[1]))
        else:
            result = _run(path, int(words[1]), int(words[2]))
        print(json.dumps(result), flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
