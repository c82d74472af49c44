"""Engine throughput against the database's own durable commit rate, measured in one run.

    python bench/engine.py                                  # SQLite in a temp dir
    python bench/engine.py --database-url postgresql://postgres@127.0.0.1/postgres

Scenarios: one 100-step pipeline of no-op steps (sequential: latency-bound),
and 200 concurrent 5-step releases (throughput-bound). The releases are
created and their first steps held back, the workers started, and then the
steps let go at once (one commit and one wake-up), so the figure is the
engine's alone: steps / (last step finished - first step started), from the
database's own timestamps.

The baseline is the raw durable commit rate of the same database in the
same run: one single-row INSERT per commit (SQLite file with the same
pragmas; PostgreSQL in autocommit, as a one-statement pgbench script
commits, over one connection and over as many as there are workers). When
pgbench is installed it measures the same statement too, which shows what
the Python client itself costs. Ratio = steps per second / single-connection
commits per second: 0.5 means a step costs two commits' worth of time.

On PostgreSQL each worker count is measured twice: as N worker threads in
this process (how the server's embedded workers run) and as N separate
`interlock worker --concurrency 1` processes (how a company runs them).
Python threads share one interpreter lock, so in-process figures cannot grow
past one core whatever the number of workers; processes can, which is the
fair measure of scale-out even on a small machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock.domain.records import Item  # noqa: E402
from interlock.engine.configs import Configs  # noqa: E402
from interlock.engine.core import Engine, Settings  # noqa: E402
from interlock.engine.releases import create_release  # noqa: E402
from interlock.engine.runtime import Runtime  # noqa: E402
from interlock.storage.db import Database  # noqa: E402
from interlock.storage.migrate import upgrade  # noqa: E402


def config_text(services: int, steps: int, pipeline_steps: int) -> str:
    lines = ["version: 1", "environments: [{name: bench}]", "services:"]
    lines.append("  pipeline:\n    deploy:")
    lines += [
        f"      - {{name: s{i}, uses: noop, idempotent: true}}" for i in range(pipeline_steps)
    ]
    for n in range(services):
        lines.append(f"  svc{n}:\n    deploy:")
        lines += [f"      - {{name: s{i}, uses: noop, idempotent: true}}" for i in range(steps)]
    return "\n".join(lines) + "\n"


# -- the baseline ----------------------------------------------------------------------


def raw_commit_rate(url: str, connections: int = 1, seconds: float = 2.0) -> float:
    """Single-row INSERT + COMMIT, durable settings, as fast as it goes, on N connections."""
    if url.startswith("sqlite:///"):
        return _sqlite_commit_rate(url[len("sqlite:///") :], seconds)
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    table = f"bench_commit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v text)")  # type: ignore
    insert = f"INSERT INTO {table} (v) VALUES ('x')"
    counts = [0] * connections
    start_line = threading.Barrier(connections + 1)
    stop_at: list[float] = []

    def commit(slot: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            start_line.wait()
            while time.perf_counter() < stop_at[0]:
                # One statement in autocommit: one round trip, one durable commit.
                conn.execute(insert)
                counts[slot] += 1

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + seconds + 0.05)
    start = time.perf_counter()
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")  # type: ignore
    return sum(counts) / elapsed


def pgbench_rate(url: str, connections: int, seconds: int = 3) -> float | None:
    """The same single-row commits from pgbench (a C client), when it is installed."""
    import glob
    import re
    import shutil

    found = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if found is None:
        return None
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    table = f"bench_pgbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, v text)")  # type: ignore
    script = Path(tempfile.mkdtemp()) / "commit.sql"
    script.write_text(f"INSERT INTO {table} (v) VALUES ('x');\n")
    try:
        out = subprocess.run(
            [found, "-n", "-f", str(script), "-c", str(connections), "-j", str(connections)]
            + ["-T", str(seconds), "-d", dsn],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}")  # type: ignore
    match = re.search(r"tps = ([0-9.]+)", out)
    return float(match.group(1)) if match else None


def _sqlite_commit_rate(path: str, seconds: float) -> float:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, v TEXT)")
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_commit (v) VALUES (?)", ("x",))
        conn.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - start
    conn.execute("DROP TABLE bench_commit")
    conn.close()
    return count / elapsed


# -- the storage floor -----------------------------------------------------------------------

# What one step of a sequential pipeline reads and writes today, statement for
# statement (claim, attempt, success, the next node made ready, the deployment's
# progress, the release's revision, the audit chain), as plain SQL: the engine's
# own write set with no engine around it. Keep it in step with the engine.
_FLOOR_STEP = [
    (
        "SELECT nodes.id, deployments.* FROM nodes JOIN deployments"
        " ON deployments.id = nodes.deployment_id WHERE nodes.state = 'ready'"
        " AND nodes.not_before <= ? ORDER BY nodes.not_before, nodes.id LIMIT 1",
        ("now",),
    ),
    (
        "UPDATE nodes SET state = 'running', attempt = attempt + 1, fence = fence + 1,"
        " lease_owner = ?, lease_expires = ?, started_at = coalesce(started_at, ?)"
        " WHERE id = ? AND state = 'ready' RETURNING *",
        ("worker", "later", "now", "node"),
    ),
    (
        "INSERT INTO attempts (node_id, attempt, worker, started_at) VALUES (?, 1, ?, ?)",
        ("node", "worker", "now"),
    ),
    (
        "UPDATE nodes SET state = 'succeeded', finished_at = ?, error = NULL, result = NULL,"
        " lease_owner = NULL, lease_expires = NULL WHERE id = ? AND state = 'running'"
        " AND fence = 1",
        ("now", "node"),
    ),
    (
        "UPDATE attempts SET finished_at = ?, outcome = 'succeeded', exit_code = NULL,"
        " error = NULL, log = log || '', log_size = log_size + 0,"
        " log_truncated = log_truncated | 0 WHERE node_id = ? AND attempt = 1",
        ("now", "node"),
    ),
    (
        "UPDATE nodes SET unmet = unmet - 1, state = CASE WHEN state = 'pending' AND"
        " unmet <= 1 THEN 'ready' ELSE state END, not_before = CASE WHEN state = 'pending'"
        " AND unmet <= 1 THEN ? ELSE not_before END WHERE deployment_id = ? AND key IN (?)"
        " RETURNING state, unmet",
        ("now", "deployment", "next"),
    ),
    (  # the deployment and its counts per (phase, state) in one statement, as the engine
        "SELECT deployments.*, (SELECT group_concat(phase || ' ' || state || ' ' || n, ',')"
        " FROM (SELECT phase, state, count(*) AS n FROM nodes WHERE deployment_id = ?"
        " GROUP BY phase, state)) AS progress FROM deployments WHERE id = ?",
        ("deployment", "deployment"),
    ),
    (
        "UPDATE releases SET updated_at = ?, revision = revision + 1 WHERE id = ?",
        ("now", "release"),
    ),
    (
        "UPDATE audit_head SET seq = seq + 2, hash = ? WHERE id = 1",
        ("hash",),
    ),
    (
        "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, body,"
        " prev_hash, hash) SELECT seq - 1, ?, 'system', 'step.started', 'step', ?, ?, ?, ?"
        " FROM audit_head WHERE id = 1 UNION ALL SELECT seq, ?, 'system', 'step.succeeded',"
        " 'step', ?, ?, ?, ? FROM audit_head WHERE id = 1",
        ("now", "node", "body", "hash", "hash2", "now", "node", "body", "hash2", "hash"),
    ),
]


# The least any step could write and stay auditable: itself done, the next node
# made ready, one audit event and the chain's head. No attempt record, no
# lease, no revision for live views: a bound no engine can beat, not a design.
_LEAST_STEP = [
    (
        "UPDATE nodes SET state = 'succeeded', finished_at = ? WHERE id = ?",
        ("now", "node"),
    ),
    (
        "UPDATE nodes SET state = 'ready', not_before = ? WHERE deployment_id = ? AND key IN (?)",
        ("now", "deployment", "next"),
    ),
    ("UPDATE audit_head SET seq = seq + 1, hash = ? WHERE id = 1", ("hash",)),
    (
        "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, body,"
        " prev_hash, hash) SELECT seq, ?, 'system', 'step.succeeded', 'step', ?, ?, ?, ?"
        " FROM audit_head WHERE id = 1",
        ("now", "node", "body", "hash2", "hash"),
    ),
]


def storage_floor_rate(
    path: str,
    engine: Engine,
    configs: Configs,
    releases: int = 60,
    statements: list[tuple[str, tuple[str, ...]]] = _FLOOR_STEP,
    first: int = 0,
) -> tuple[float, float]:
    """Steps per second if a step cost nothing but its own statements and commit,
    and the CPU seconds of one such step.

    Creates ``releases`` releases of 5-step services (``svcN`` from ``first`` on,
    distinct services, so they all start at once; no worker runs them), then walks
    each one's steps with ``statements`` (the engine's own) through the sqlite3
    module directly, one transaction per step, as the engine does. Its audit
    events carry made-up hashes: run it only on the bench's own database.
    """
    import hashlib
    import sqlite3

    ids = [
        create_release(
            engine, configs, actor="bench", reason="floor", items=[Item(f"svc{n}", "9.0")]
        ).id
        for n in range(first, first + releases)
    ]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    walks = []
    for release_id in ids:
        rows = conn.execute(
            "SELECT nodes.id, nodes.deployment_id, nodes.dependents FROM nodes JOIN deployments"
            " ON deployments.id = nodes.deployment_id WHERE deployments.release_id = ?"
            " ORDER BY nodes.position",
            (release_id,),
        ).fetchall()
        walks += [(release_id, *row) for row in rows]
    digest = hashlib.sha256(b"floor").hexdigest()
    start, cpu = time.perf_counter(), time.process_time()
    for release_id, node_id, deployment_id, dependents in walks:
        now = time.time()
        following = next(iter(json.loads(dependents or "[]")), "")
        values = {
            "now": now + 86_400,  # later than any hold on the ready nodes
            "later": now + 60,
            "worker": "floor",
            "node": node_id,
            "deployment": deployment_id,
            "next": following,
            "release": release_id,
            "hash": digest,
            "hash2": digest,
            "body": '{"action": "step.succeeded"}',
        }
        conn.execute("BEGIN IMMEDIATE")
        for sql, names in statements:
            conn.execute(sql, [values[name] for name in names]).fetchall()
        conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return len(walks) / elapsed, cpu / len(walks)


# -- workers -------------------------------------------------------------------------------


class ThreadWorkers:
    """N worker threads in this process (the server's embedded workers)."""

    label = "threads"

    def __init__(self, engine: Engine, count: int) -> None:
        self.runtime = Runtime(engine, workers=count, scheduler=False)

    def start(self) -> None:
        self.runtime.start()

    def stop(self) -> None:
        self.runtime.stop(drain=5)


class ProcessWorkers:
    """N `interlock worker --concurrency 1` processes (each with its own interpreter)."""

    label = "processes"

    def __init__(self, engine: Engine, count: int) -> None:
        self.url = engine.db.url.replace("postgresql+psycopg://", "postgresql://")
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        env = {**os.environ, "INTERLOCK_DATABASE_URL": self.url}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        command = [sys.executable, "-c", "from interlock.cli.main import main; main()"]
        for _ in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [*command, "worker", "--concurrency", "1", "--no-scheduler"]
                    + ["--log-level", "warning"],
                    env=env,
                )
            )
        # The window is measured from the first step's start, so start-up is not
        # counted; waiting for all of them keeps a slow starter from idling meanwhile.
        deadline = time.monotonic() + 60
        while not self.ready():
            if time.monotonic() > deadline:
                raise SystemExit("the worker processes did not start")
            time.sleep(0.05)

    def ready(self) -> bool:
        import psycopg

        names = [f"interlock listen {socket.gethostname()}:{p.pid}"[:63] for p in self.processes]
        with psycopg.connect(self.url, autocommit=True) as conn:
            found = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = ANY(%s)", (names,)
            ).fetchone()
        return bool(found and found[0] == len(names))

    def cpu(self) -> float:
        """CPU seconds the worker processes have spent so far (all their threads)."""
        return sum(process_cpu(p.pid) or 0.0 for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(30)
        self.processes = []


# -- one measurement ---------------------------------------------------------------------


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) of a process on this machine, if readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(db: Database) -> dict[int, float] | None:
    """CPU seconds spent so far by each PostgreSQL session of this database (by pid),
    when the server runs on this machine (its processes readable in /proc)."""
    if db.dialect != "postgresql":
        return None
    from sqlalchemy import text

    with db.engine.connect() as conn:
        pids = [
            int(pid)
            for pid in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
        ]
    times = {pid: process_cpu(pid) for pid in pids}
    if not times or any(t is None for t in times.values()):
        return None
    return {pid: t for pid, t in times.items() if t is not None}


def spent(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds between two :func:`server_cpu` readings (sessions opened meanwhile
    count from zero; one closed meanwhile is not counted)."""
    if before is None or after is None:
        return None
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _pending(db: Database, ids: list[int]) -> int:
    from sqlalchemy import func, select

    from interlock.storage.schema import releases

    with db.engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(releases)
            .where(releases.c.id.in_(ids), releases.c.finished_at.is_(None))
        )
        return int(conn.execute(query).scalar_one())


def _window(db: Database, ids: list[int]) -> tuple[int, float]:
    """Steps run for these releases, and first start to last finish in seconds."""
    from sqlalchemy import func, select

    from interlock.storage.schema import attempts, deployments, nodes, releases

    with db.engine.connect() as conn:
        bad = conn.execute(
            select(func.count())
            .select_from(releases)
            .where(releases.c.id.in_(ids), releases.c.state != "succeeded")
        ).scalar_one()
        if bad:
            raise SystemExit(f"{bad} releases did not succeed")
        row = conn.execute(
            select(func.count(), func.min(attempts.c.started_at), func.max(attempts.c.finished_at))
            .select_from(attempts)
            .join(nodes, nodes.c.id == attempts.c.node_id)
            .join(deployments, deployments.c.id == nodes.c.deployment_id)
            .where(deployments.c.release_id.in_(ids))
        ).one()
    return int(row[0]), (row[2] - row[1]).total_seconds()


def _gate(db: Database, open_: bool) -> None:
    """Hold every ready step back (``open_=False``), or let them all go at once."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from interlock.storage.schema import nodes

    now = datetime.now(UTC)
    with db.transaction() as tx:
        tx.conn.execute(
            update(nodes)
            .where(nodes.c.state == "ready")
            .values(not_before=now if open_ else now + timedelta(days=1))
        )
        if open_:
            tx.notify("work")


class Statements:
    """Counts the statements and commits this process sends while it is open.

    Not those of the thread that opened it: the bench's own polling for the end
    of the run (one query every 50 ms) would count, more so the slower the run.
    With ``count=False`` it only takes the CPU time: the listeners that count
    cost the process 100 to 150 Python calls a step (SQLAlchemy's event dispatch
    for each statement), which a run that is timed should not pay (DBOS, in
    bench/peers, runs with none).
    """

    def __init__(self, db: Database, count: bool = True) -> None:
        self.engine = db.engine
        self.count = count
        self.statements = 0.0
        self.commits = 0.0
        self.cpu = 0.0  # CPU seconds of this whole process (every thread) while open
        self.workers: float | None = None  # of the worker processes, if any
        self.server: float | None = None  # of the database's sessions, if readable
        self.bench = threading.get_ident()

    def _statement(self, *_: object) -> None:
        if threading.get_ident() != self.bench:
            self.statements += 1

    def _commit(self, *_: object) -> None:
        if threading.get_ident() != self.bench:
            self.commits += 1

    def __enter__(self) -> Statements:
        from sqlalchemy import event

        if self.count:
            event.listen(self.engine, "before_cursor_execute", self._statement)
            event.listen(self.engine, "commit", self._commit)
        self._cpu = time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        from sqlalchemy import event

        self.cpu = time.process_time() - self._cpu
        if self.count:
            event.remove(self.engine, "before_cursor_execute", self._statement)
            event.remove(self.engine, "commit", self._commit)


def measure(
    engine: Engine,
    configs: Configs,
    workers: Callable[[], ThreadWorkers | ProcessWorkers],
    refs: list[str],
    *,
    count: bool = True,
) -> tuple[float, Statements]:
    """Create the releases, start the workers, then let the work go.

    Returns steps per second, and what this process sent and spent meanwhile per
    step (everything, for worker threads; only the polling of this run, for
    processes). CPU time does not move with the machine's load as wall time does.
    ``count=False``: the statements and commits are not counted (zero), so
    nothing but the engine runs in the timed window.
    """
    ids = [
        create_release(
            engine, configs, actor="bench", reason="bench", items=[Item(ref, f"1.{n}")]
        ).id
        for n, ref in enumerate(refs)
    ]
    _gate(engine.db, open_=False)
    pool = workers()
    pool.start()
    try:
        time.sleep(0.2)  # every worker is idle, waiting for a wake-up
        server = server_cpu(engine.db)
        workers_cpu = pool.cpu() if isinstance(pool, ProcessWorkers) else None
        with Statements(engine.db, count) as sent:
            _gate(engine.db, open_=True)
            deadline = time.monotonic() + 600
            while _pending(engine.db, ids):
                if time.monotonic() > deadline:
                    raise SystemExit("the releases did not finish in 10 minutes")
                time.sleep(0.05)
        sent.server = spent(server, server_cpu(engine.db))
        if workers_cpu is not None and isinstance(pool, ProcessWorkers):
            sent.workers = pool.cpu() - workers_cpu
    finally:
        pool.stop()
    steps, seconds = _window(engine.db, ids)
    sent.statements /= steps
    sent.commits /= steps
    sent.cpu /= steps
    sent.server = None if sent.server is None else sent.server / steps
    sent.workers = None if sent.workers is None else sent.workers / steps
    return steps / seconds, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--workers",
        default=None,
        help="comma-separated worker counts (default: 4 on SQLite, 1,2,4 on PostgreSQL)",
    )
    parser.add_argument(
        "--mode",
        choices=["threads", "processes", "both"],
        default=None,
        help="PostgreSQL: worker threads in this process, worker processes, or both (default)",
    )
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--pipeline-steps", type=int, default=100)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    postgres = url.startswith(("postgresql://", "postgres://"))
    if postgres:
        url = _fresh_pg_database(url)
    counts = [
        int(w) for w in (args.workers or ("1,2,4" if postgres else "4")).split(",") if w.strip()
    ]
    mode = args.mode or ("both" if postgres else "threads")
    if mode != "threads" and not postgres:
        raise SystemExit("worker processes need PostgreSQL (`interlock worker`)")
    modes = ["threads", "processes"] if mode == "both" else [mode]
    config = tmp / "interlock.yaml"
    config.write_text(config_text(args.releases, 5, args.pipeline_steps))

    db = Database(url, pool_size=max(counts) + 4)
    upgrade(db)
    engine = Engine(db, settings=Settings(tick=1.0, poll_interval=0.5))
    configs = engine.configs
    configs.load_file(config, actor="bench")

    baseline = raw_commit_rate(url)
    print(f"database: {db.dialect} ({'file ' + url[10:] if not postgres else _pg_settings(url)})")
    print(f"machine: {os.cpu_count()} cores, shared by the database, the workers and this run")
    print("raw durable single-row commits (one INSERT per commit, from Python):")
    print(f"  1 connection: {baseline:,.0f}/s")
    parallel = {}
    if postgres:
        for count in counts:
            if count > 1:
                parallel[count] = raw_commit_rate(url, connections=count)
                print(f"  {count} connections: {parallel[count]:,.0f}/s")
        for count in sorted({1, *counts}):
            tps = pgbench_rate(url, count)
            if tps is not None:
                print(f"  pgbench (C client, same statement), {count} connections: {tps:,.0f}/s")
    print()
    print(
        f"{'scenario':<40} {'workers':>11} {'steps/s':>8} {'ratio':>6}"
        + (f" {'vs N conns':>10}" if parallel else "")
        + f" {'stmts/step':>10} {'commits/step':>12} {'cpu ms/step':>11}"
        + (f" {'db cpu ms/step':>14}" if postgres else "")
    )
    scenarios = [
        (f"1 release x {args.pipeline_steps} sequential steps", ["pipeline"]),
        (
            f"{args.releases} concurrent releases x 5 steps",
            [f"svc{n}" for n in range(args.releases)],
        ),
    ]
    for label in modes:
        for count in counts:
            for title, refs in scenarios:

                def workers(
                    count: int = count, label: str = label
                ) -> ThreadWorkers | ProcessWorkers:
                    if label == "threads":
                        return ThreadWorkers(engine, count)
                    return ProcessWorkers(engine, count)

                # Timed with nothing counting; counted in a run of its own (see Statements).
                rate, sent = measure(engine, configs, workers, refs, count=False)
                if label == "threads":
                    _, counted_run = measure(engine, configs, workers, refs)
                    sent.statements, sent.commits = counted_run.statements, counted_run.commits
                against = parallel.get(count, baseline)
                noun = {"threads": "thread", "processes": "process"}[label]
                kind = noun if count == 1 else label
                if label == "threads":
                    counted = f" {sent.statements:>10.1f} {sent.commits:>12.2f}"
                    cpu: float | None = sent.cpu
                else:  # sent by other processes; the CPU theirs
                    counted, cpu = f" {'-':>10} {'-':>12}", sent.workers
                counted += f" {'-':>11}" if cpu is None else f" {1000 * cpu:>11.3f}"
                if postgres:
                    server = "-" if sent.server is None else f"{1000 * sent.server:.3f}"
                    counted += f" {server:>14}"
                print(
                    f"{title:<40} {f'{count} {kind}':>11} {rate:>8,.0f} "
                    f"{rate / baseline:>6.3f}"
                    + (f" {rate / against:>10.3f}" if parallel else "")
                    + counted
                )
    if args.database_url is None:  # (the floor writes made-up audit hashes)
        floor, floor_cpu = storage_floor_rate(url[len("sqlite:///") :], engine, configs)
        print(
            f"{'storage floor (the SQL of a step alone)':<40} {'-':>11}"
            f" {floor:>8,.0f} {floor / baseline:>6.3f}"
            f" {len(_FLOOR_STEP) + 1:>10.1f} {1:>12.2f} {1000 * floor_cpu:>11.3f}"  # and BEGIN
        )
        least, least_cpu = storage_floor_rate(
            url[len("sqlite:///") :], engine, configs, statements=_LEAST_STEP, first=60
        )
        print(
            f"{'least a step can write (4 statements)':<40} {'-':>11}"
            f" {least:>8,.0f} {least / baseline:>6.3f}"
            f" {len(_LEAST_STEP) + 1:>10.1f} {1:>12.2f} {1000 * least_cpu:>11.3f}"
        )
    db.dispose()
    print(
        "\nstmts/step: statements per step (BEGIN counted, COMMIT not), sent by this process,"
        " counted in a second run of the scenario (steps/s and cpu ms/step come from a run"
        " with no listener counting);"
        "\ncpu ms/step: CPU time of this process (all its threads; with worker processes,"
        " theirs) per step, from the release of the steps to the end of the last."
        + (
            "\ndb cpu ms/step: CPU time of the database's server sessions per step (when the"
            " server runs on this machine)."
            if postgres
            else ""
        )
        + "\nratio = steps/s / single-connection commits/s"
        + (
            "; vs N conns = steps/s / commits/s over as many connections as workers."
            if parallel
            else "."
        )
    )
    if postgres:
        print(
            "threads: worker threads in this process (the server's embedded workers); they share\n"
            "one interpreter lock, so they cannot use more than one core. processes: separate\n"
            "`interlock worker --concurrency 1` processes, the way workers scale out."
        )


def _pg_settings(url: str) -> str:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        values = [
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore
            for name in ("server_version", "fsync", "synchronous_commit")
        ]
    return "server, " + ", ".join(values)


def _fresh_pg_database(url: str) -> str:
    """Benchmark in a new database next to the one named, dropped at exit."""
    import atexit

    import psycopg

    base = url.replace("postgres://", "postgresql://")
    admin, _, _ = base.rpartition("/")
    # bench/pg_waits.py tags the databases of the command it samples (not other runs').
    name = f"interlock_bench_{os.environ.get('INTERLOCK_BENCH_TAG', '')}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore

    atexit.register(drop)
    return f"{admin}/{name}"


if __name__ == "__main__":
    os.environ.setdefault("INTERLOCK_SQLITE_SYNCHRONOUS", "FULL")
    main()
