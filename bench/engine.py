"""Engine throughput against the database's own durable commit rate, measured in one run.

    python bench/engine.py                                  # SQLite in a temp dir
    python bench/engine.py --database-url postgresql://postgres@127.0.0.1/bench

Scenarios: one 100-step pipeline of no-op steps (sequential: latency-bound),
and 200 concurrent 5-step releases (throughput-bound). The baseline is the
raw single-row durable commit rate of the same database (SQLite file with the
same pragmas; PostgreSQL server over one connection, as pgbench -N would
commit). Ratio = steps per second / commits per second: 0.5 means a step
costs two commits.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
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


def raw_commit_rate(url: str, seconds: float = 2.0) -> float:
    """Single-row INSERT + COMMIT, one connection, durable settings, as fast as it goes."""
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
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
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit (id serial PRIMARY KEY, v text)")
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            with conn.transaction():
                conn.execute("INSERT INTO bench_commit (v) VALUES ('x')")
            count += 1
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_commit")
    return count / elapsed


def wait_all(engine: Engine, ids: list[int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        with engine.db.read() as tx:
            pending = {i for i in pending if tx.get_release(i).finished_at is None}
        if pending:
            time.sleep(0.02)
    if pending:
        raise SystemExit(f"{len(pending)} releases did not finish")
    with engine.db.read() as tx:
        bad = [i for i in ids if tx.get_release(i).state.value != "succeeded"]
    if bad:
        raise SystemExit(f"releases {bad[:5]} did not succeed")


def scenario(engine: Engine, configs: Configs, workers: int, refs: list[str], steps: int) -> float:
    runtime = Runtime(engine, workers=workers, scheduler=False)
    runtime.start()
    try:
        start = time.perf_counter()
        ids = [
            create_release(
                engine, configs, actor="bench", reason="bench", items=[Item(ref, f"1.{n}")]
            ).id
            for n, ref in enumerate(refs)
        ]
        wait_all(engine, ids)
        elapsed = time.perf_counter() - start
    finally:
        runtime.stop(drain=5)
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--workers",
        default=None,
        help="comma-separated worker counts (default: 4 on SQLite, 1,2,4 on PostgreSQL)",
    )
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--pipeline-steps", type=int, default=100)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if url.startswith(("postgresql://", "postgres://")) and not args.database_url.endswith("?"):
        url = _fresh_pg_database(url)
    workers = [
        int(w) for w in (args.workers or ("4" if url.startswith("sqlite") else "1,2,4")).split(",")
    ]
    config = tmp / "interlock.yaml"
    config.write_text(config_text(args.releases, 5, args.pipeline_steps))

    db = Database(url, pool_size=max(workers) + 4)
    upgrade(db)
    baseline = raw_commit_rate(url)
    print(f"database: {db.dialect} ({'file ' + url[10:] if db.dialect == 'sqlite' else 'server'})")
    print(f"raw durable single-row commits: {baseline:,.0f}/s (one connection)")
    print()
    print(f"{'scenario':<44} {'workers':>7} {'steps/s':>9} {'ratio':>6}")
    for count in workers:
        engine = Engine(db, settings=Settings(tick=1.0, poll_interval=0.5))
        configs = Configs(engine)
        configs.load_file(config, actor="bench")
        rate = scenario(engine, configs, count, ["pipeline"], args.pipeline_steps)
        print(
            f"{'1 release x ' + str(args.pipeline_steps) + ' sequential steps':<44} "
            f"{count:>7} {rate:>9,.0f} {rate / baseline:>6.2f}"
        )
        refs = [f"svc{n}" for n in range(args.releases)]
        rate = scenario(engine, configs, count, refs, args.releases * 5)
        print(
            f"{str(args.releases) + ' concurrent releases x 5 steps':<44} "
            f"{count:>7} {rate:>9,.0f} {rate / baseline:>6.2f}"
        )
    db.dispose()


def _fresh_pg_database(url: str) -> str:
    """Benchmark in a new database next to the one named, dropped at exit."""
    import atexit

    import psycopg

    base = url.replace("postgres://", "postgresql://")
    admin, _, _ = base.rpartition("/")
    name = f"interlock_bench_{uuid.uuid4().hex[:8]}"
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
