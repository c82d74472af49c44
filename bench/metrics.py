"""Every delivery metric over 1,000,000 deployments and 100,000 incidents, timed.

    python bench/metrics.py                                   # SQLite in a temp dir
    python bench/metrics.py --database-url postgresql://postgres@127.0.0.1/postgres
    python bench/metrics.py --keep /tmp/metrics.db            # reuse the SQLite file next time

The data is synthetic and bulk-inserted through the database driver
(``executemany`` of plain tuples on SQLite, ``COPY`` on PostgreSQL, 200,000
rows a chunk) straight into Interlock's tables, then the delivery facts are
derived from it as ``interlock db rebuild-metrics`` does (not timed; both
phases print their time, the derivation being by far the longer): releases
of 40 services by 30 people over two years, each deployed to
dev, staging and production (``--environments 1`` puts every deployment in
production), with artifacts and their commit times, approval gates, automated
and manual steps, scheduled releases, rollbacks, and incidents (most naming
the deployment that caused them).

What is timed is what ``interlock metrics`` and ``GET /api/v1/metrics`` do:
every metric under the default definitions, for production over the whole
period, from a cold start of the metrics code (a fresh connection); then each
other definition choice, and the manual-step ranking and a ``/metrics``
scrape. Each figure is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import Index, Table, event, text  # noqa: E402
from sqlalchemy.schema import CreateIndex, DropIndex  # noqa: E402

from interlock.storage import schema  # noqa: E402
from interlock.storage.db import Database  # noqa: E402
from interlock.storage.metric_days import drop_ddl, trigger_ddl  # noqa: E402
from interlock.storage.migrate import upgrade  # noqa: E402

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
SPAN_DAYS = 730
SERVICES = [f"svc-{i:02d}" for i in range(40)]
TEAMS = [f"team-{i}" for i in range(8)]
PEOPLE = [f"person-{i:02d}" for i in range(30)]
ENVIRONMENTS = ["dev", "staging", "production"]
CHUNK = 200_000
# The records' tables the build writes: their secondary indexes are made after their
# rows (at 10,000,000 deployments, index entries inserted in random order outgrow
# the page cache and each costs a read).
RECORDS = ("releases", "release_items", "artifacts", "deployments", "nodes", "incidents")
EMPTY_OBJECT, EMPTY_LIST = "{}", "[]"  # JSON columns, as the driver takes them

CONFIG = """\
version: 1
environments:
{environments}
services:
{services}
"""


def config_text(environments: list[str]) -> str:
    envs = "\n".join(
        f"  - name: {e}" + ("\n    production: true" if e == "production" else "")
        for e in environments
    )
    services = "\n".join(
        f"  {s}:\n    owner: {TEAMS[i % len(TEAMS)]}\n    deploy: [{{name: roll-out, run: 'true'}}]"
        for i, s in enumerate(SERVICES)
    )
    return CONFIG.format(environments=envs, services=services)


class Writer:
    """Buffers rows per table and writes them straight through the database driver.

    SQLAlchemy's ``executemany`` processes every value of every row (types,
    JSON, booleans) and costs more than the database does; here the rows hold
    what the driver takes (JSON columns as text) and a chunk of a table goes to
    the driver as plain tuples: one
    ``executemany`` on SQLite, one ``COPY`` on PostgreSQL, every table of a
    flush in one transaction.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.tables: dict[str, Table] = {}
        self.written: dict[str, int] = {}

    def add(self, table: Table, row: dict[str, Any]) -> None:
        found = self.rows.setdefault(table.name, [])
        self.tables[table.name] = table
        found.append(row)
        if len(found) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, parents first (tables in the order first seen)."""
        with self.db.engine.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            for each in self.rows:
                rows = self.rows.get(each)
                if not rows:
                    continue
                names = list(rows[0])
                plain = [tuple(row.values()) for row in rows]  # JSON already text, bool an int
                columns = ", ".join(names)
                if self.db.dialect == "postgresql":
                    with driver.cursor() as cursor:  # type: ignore[attr-defined]
                        with cursor.copy(f"COPY {each} ({columns}) FROM STDIN") as copy:
                            for row in plain:
                                copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(names))
                    driver.executemany(  # type: ignore[attr-defined]
                        f"INSERT INTO {each} ({columns}) VALUES ({marks})", plain
                    )
                self.written[each] = self.written.get(each, 0) + len(rows)
                self.rows[each] = []


def lognormal(rng: random.Random, median: float, sigma: float = 1.0) -> float:
    return median * rng.lognormvariate(0.0, sigma)


def build(db: Database, deployments: int, incidents: int, environments: int, seed: int) -> None:
    """Fill a migrated, empty database with synthetic history."""
    rng = random.Random(seed)
    envs = ENVIRONMENTS[-environments:]
    writer = Writer(db)
    written = time.perf_counter()
    now = datetime.now(UTC).timestamp()
    with db.engine.begin() as conn:
        # Per-day counts (metric_days) are counted once at the end, not row by row.
        for statement in drop_ddl(db.dialect):
            conn.execute(text(statement))
        deferred = record_indexes(conn)
        for index in deferred:
            conn.execute(DropIndex(index))
        conn.execute(
            schema.config_versions.insert(),
            {
                "version": 1,
                "hash": "0" * 64,
                "path": "bench/interlock.yaml",
                "text": config_text(envs),
                "loaded_at": START,
                "loaded_by": "bench",
            },
        )
    versions = dict.fromkeys(SERVICES, 0)
    # JSON columns get their text: the few values there are, serialised once.
    routes = {"rollback": json.dumps([envs[-1]]), "deploy": json.dumps(list(envs))}
    settings = {flag: json.dumps({"production": flag}) for flag in (False, True)}
    weights = [1 / (i + 1) for i in range(len(PEOPLE))]  # a few people run most releases
    release_id = deployment_id = node_id = 0
    made = 0
    production: list[tuple[int, float, str]] = []  # (deployment id, finished, service)
    # Releases are spread evenly over the period; each goes through every environment
    # (a rollback release only to production).
    estimate = deployments / len(envs)
    step = SPAN_DAYS * 86400 / estimate
    at = START
    while made < deployments:
        at += rng.expovariate(1 / step)
        release_id += 1
        kind = "rollback" if rng.random() < 0.03 else "deploy"
        count = 1 if kind == "rollback" or rng.random() < 0.9 else rng.choice((2, 3))
        services = rng.sample(SERVICES, count)
        person = rng.choices(PEOPLE, weights)[0]
        scheduled = at - lognormal(rng, 600, 1.5) if rng.random() < 0.1 else None
        writer.add(
            schema.releases,
            {
                "id": release_id,
                "reason": "BENCH-1",
                "created_by": person,
                "on_behalf_of": None,
                "created_at": at,
                "state": "succeeded",
                "updated_at": at,
                "finished_at": at,
                "scheduled_at": scheduled,
                "config_version": 1,
                "route": routes[kind],
                "environment": envs[-1],
                "kind": kind,
            },
        )
        for position, service in enumerate(services):
            versions[service] += 1
            version = f"1.{versions[service]}.0"
            sha = uuid.UUID(int=rng.getrandbits(128)).hex + "00000000"
            committed = at - lognormal(rng, 3 * 3600, 1.2)
            if rng.random() < 0.005:
                committed = at + 3 * 86400  # a skewed build clock
            writer.add(
                schema.release_items,
                {
                    "release_id": release_id,
                    "position": position,
                    "service": service,
                    "version": version,
                    "digest": None,
                    "commit_sha": sha,
                },
            )
            writer.add(
                schema.artifacts,
                {
                    "service": service,
                    "version": version,
                    "digest": "sha256:" + sha[:64].ljust(64, "0"),
                    "commit_sha": sha,
                    "committed_at": committed,
                    "registered_at": committed + 600,
                    "registered_by": "ci",
                },
            )
        route = envs[-1:] if kind == "rollback" else envs
        created = at
        for index, env in enumerate(route):
            if made >= deployments:
                break
            made += 1
            deployment_id += 1
            created += 0 if index == 0 else lognormal(rng, 6 * 3600, 1.0)
            started = created + rng.uniform(1, 120)
            roll = rng.random()
            state = (
                "succeeded"
                if roll < 0.88
                else "failed"
                if roll < 0.93
                else "rolled_back"
                if roll < 0.97
                else "cancelled"
            )
            finished = started + lognormal(rng, 900, 0.8)
            if finished > now:  # the last few are still going
                state, finished = "running", None
            writer.add(
                schema.deployments,
                {
                    "id": deployment_id,
                    "release_id": release_id,
                    "kind": kind,
                    "environment": env,
                    "env_index": index,
                    "state": state,
                    "created_by": person,
                    "created_at": created,
                    "started_at": started,
                    "finished_at": finished,
                    "previous": EMPTY_OBJECT,
                    "settings": settings[env == "production"],
                },
            )
            if env == "production" and finished is not None:
                production.append((deployment_id, finished, services[0]))
            nodes: list[tuple[str, str, str, float, float | None]] = []
            if env != "dev" and kind == "deploy":
                nodes.append(
                    ("gate/approval", "gate", "approval", started, started + lognormal(rng, 1800))
                )
            for service in services:
                nodes.append((f"{service}/build", "step", "shell", started, started + 60))
                if rng.random() < 0.2:
                    wait = lognormal(rng, 1200, 1.2)
                    nodes.append(
                        (f"{service}/smoke-check", "step", "manual", started, started + wait)
                    )
            for position, (key, node_kind, executor, begun, ended) in enumerate(nodes):
                node_id += 1
                open_ = ended is None or finished is None
                writer.add(
                    schema.nodes,
                    {
                        "id": node_id,
                        "deployment_id": deployment_id,
                        "key": key,
                        "kind": node_kind,
                        "service": None if node_kind == "gate" else key.split("/")[0],
                        "name": key.split("/")[-1],
                        "phase": "before" if node_kind == "gate" else "deploy",
                        "position": position,
                        "needs": EMPTY_LIST,
                        "unmet": 0,
                        "dependents": EMPTY_LIST,
                        "executor": executor,
                        "spec": EMPTY_OBJECT,
                        "timeout": 600.0,
                        "max_attempts": 1,
                        "backoff": 5.0,
                        "idempotent": False,
                        "state": "waiting" if open_ else "succeeded",
                        "attempt": 1,
                        "fence": 1,
                        "cancel_requested": False,
                        "started_at": begun,
                        "finished_at": None if open_ else ended,
                    },
                )
    for number in range(1, incidents + 1):
        linked = rng.random() < 0.8 and production
        if linked:
            culprit, finished, service = rng.choice(production)
            opened = finished + rng.uniform(60, 7200)
        else:
            culprit, service = None, rng.choice(SERVICES)
            opened = START + rng.uniform(0, SPAN_DAYS * 86400)
        resolved = opened + lognormal(rng, 3600, 1.3) if rng.random() < 0.97 else None
        if resolved is not None and resolved > now:
            resolved = None
        writer.add(
            schema.incidents,
            {
                "id": number,
                "service": service,
                "environment": "production" if rng.random() < 0.9 else envs[0],
                "summary": "bench",
                "state": "resolved" if resolved else "open",
                "opened_at": opened,
                "opened_by": "interlock",
                "deployment_id": culprit,
                "resolved_at": resolved,
                "resolution": rng.choice(("manual", "rollback", "fix")) if resolved else None,
            },
        )
    writer.flush()
    print(
        f"records written in {time.perf_counter() - written:.0f}s: "
        + ", ".join(f"{n:,} {t}" for t, n in sorted(writer.written.items())),
        flush=True,
    )
    indexed = time.perf_counter()
    with db.engine.begin() as conn:
        for index in deferred:
            conn.execute(CreateIndex(index))
    print(f"records' indexes made in {time.perf_counter() - indexed:.0f}s", flush=True)
    # The rows went straight into the tables, past the transactions that keep the
    # delivery facts in step: derive them as `interlock db rebuild-metrics` does
    # (in bulk: the facts' indexes are made after their rows), which also counts
    # every day of metric_days; then the triggers that keep those counts.
    analyze(db)
    began = time.perf_counter()
    with db.transaction() as tx:
        facts = tx.rebuild_delivery(bulk=True)
        for statement in trigger_ddl(db.dialect, ("incidents", "nodes")):
            tx.conn.execute(text(statement))
    print(
        f"delivery facts derived in {time.perf_counter() - began:.0f}s: "
        + ", ".join(f"{n:,} {t}" for t, n in facts.items()),
        flush=True,
    )
    analyze(db)
    print(
        "built: " + ", ".join(f"{n:,} {t}" for t, n in sorted(writer.written.items())),
        flush=True,
    )


def record_indexes(conn: Any) -> list[Index]:
    """The secondary indexes of the records' tables that the database has (the schema's
    own: a migration made each), to drop before the rows go in and make after."""
    listed = (
        "SELECT indexname FROM pg_indexes WHERE tablename = :t"
        if conn.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    )  # (the inspector skips the expression indexes)
    indexes = []
    for name in RECORDS:
        table = schema.metadata.tables[name]
        present = set(conn.execute(text(listed), {"t": name}).scalars())
        indexes += [index for index in table.indexes if index.name in present]
    return indexes


@contextmanager
def building(db: Database) -> Iterator[None]:
    """SQLite connections with a large page cache while building (1 GB: the indexes
    of millions of rows); the measuring after it gets the product's own connections."""
    if db.dialect != "sqlite":
        yield
        return

    def cache(connection: Any, _record: Any) -> None:
        connection.execute("PRAGMA cache_size = -1000000")

    db.engine.dispose()
    event.listen(db.engine, "connect", cache)
    try:
        yield
    finally:
        event.remove(db.engine, "connect", cache)
        db.engine.dispose()


def analyze(db: Database) -> None:
    """Statistics for the planner, after rows were bulk-inserted."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds, and the CPU seconds of this process (SQLite's work included;
    on PostgreSQL the server's is not) in them: on a loaded machine the CPU time says
    more about the work than the wall clock does."""

    wall: float
    cpu: float


def best(call: Callable[[], Any], repeat: int) -> tuple[Timing, Any]:
    """The fastest of ``repeat`` runs and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        result = call()
        times.append(Timing(time.perf_counter() - began, time.process_time() - cpu))
    return min(times, key=lambda t: t.wall), result


def period(days: float | None = None) -> tuple[str, str]:
    end = datetime.fromtimestamp(START, UTC) + timedelta(days=SPAN_DAYS)
    begin = datetime.fromtimestamp(START, UTC) if days is None else end - timedelta(days=days)
    return begin.isoformat(), end.isoformat()


def measure(db: Database, repeat: int) -> list[tuple[str, Timing, str]]:
    """Every figure: (what, seconds, a result to show it computed something)."""
    from interlock.engine.clock import ManualClock
    from interlock.engine.core import Engine
    from interlock.engine.exposition import DeliveryCollector
    from interlock.engine.metrics import MetricsRequest, delivery_report, manual_steps_report
    from interlock.metrics.definitions import Definitions
    from interlock.storage.metrics import MetricScope

    engine = Engine(db)
    since, until = period()
    figures: list[tuple[str, Timing, str]] = []

    def report(definitions: Definitions, span: tuple[str, str] = (since, until)) -> Any:
        request = MetricsRequest(since=span[0], until=span[1], definitions=definitions)
        return delivery_report(engine, request)

    def shown(found: Any) -> str:
        m = {r.key: r for r in found.metrics}
        return (
            f"n={m['deployment_frequency'].n:,} deployments,"
            f" CFR {m['change_failure_rate'].display()}, lead {m['lead_time'].display()},"
            f" restore {m['time_to_restore'].display()}"
        )

    seconds, found = best(lambda: report(Definitions()), repeat)
    figures.append(("all metrics, default definitions, whole history", seconds, shown(found)))
    for name, definitions in (
        (
            "restore from deployments",
            Definitions(restore_from=Definitions.parse(restore_from="deployment").restore_from),
        ),
        ("deployment days, p90", Definitions.parse(frequency_count="days", statistic="p90")),
    ):
        seconds, found = best(lambda d=definitions: report(d), repeat)
        figures.append((f"all metrics, {name}, whole history", seconds, shown(found)))
    seconds, found = best(lambda: report(Definitions(), period(90)), repeat)
    figures.append(("all metrics, default definitions, last 90 days", seconds, shown(found)))
    seconds, steps = best(
        lambda: manual_steps_report(engine, MetricsRequest(since=since, until=until)), repeat
    )
    figures.append(("manual-step ranking, whole history", seconds, f"{len(steps['steps'])} steps"))

    scope = MetricScope(
        ("production",),
        datetime.fromisoformat(since),
        datetime.fromisoformat(until),
        complete=True,
        unplaced_runbooks=True,
    )
    from interlock.metrics.definitions import RestoreFrom

    with db.read() as tx:
        facts = tx.delivery_facts(scope)
        for name, call in (
            ("deployment_counts", facts.deployment_counts),
            ("lead_times", facts.lead_times),
            ("restore_times(incident)", lambda: facts.restore_times(RestoreFrom.INCIDENT)),
            ("restore_times(deployment)", lambda: facts.restore_times(RestoreFrom.DEPLOYMENT)),
            ("incident_counts", facts.incident_counts),
            ("pipeline_runs", facts.pipeline_runs),
            ("approval_waits", facts.approval_waits),
            ("step_counts", facts.step_counts),
            ("releases_by_person", facts.releases_by_person),
            ("schedule_slips", facts.schedule_slips),
        ):
            seconds, _ = best(call, 1)
            figures.append((f"  {name}", seconds, ""))

    # Now: the history is past, its blocks of days moved into metric_blocks (as a
    # server finds them; a scrape's mark lies after them).
    clock = ManualClock(datetime.now(UTC))
    with db.transaction() as tx:  # (a kept database: what a run before saved)
        tx.forget_totals()
    collector = DeliveryCollector(Engine(db, clock=clock))
    seconds, size = best(lambda: len(collector.exposition()), 1)
    figures.append(("/metrics, first scrape ever (sums history)", seconds, f"{size:,} bytes"))
    clock.advance(300)
    seconds, size = best(lambda: len(DeliveryCollector(Engine(db, clock=clock)).exposition()), 1)
    figures.append(("/metrics, a new process's first scrape", seconds, f"{size:,} bytes"))
    clock.advance(15)
    seconds, _ = best(collector.exposition, repeat)
    figures.append(("/metrics, next scrapes", seconds, ""))
    return figures


def load() -> str:
    """The 1-minute load average (figures are worth comparing only beside it)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def fresh_postgres(url: str, keep: str | None) -> tuple[str, bool]:
    """A database next to the one named: ``keep`` (reused), else a new one dropped at exit."""
    import atexit

    import psycopg

    base = url.replace("postgres://", "postgresql://")
    admin, _, _ = base.rpartition("/")
    name = keep or f"interlock_bench_metrics_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    if not keep:

        def drop() -> None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore

        atexit.register(drop)
    return f"{admin}/{name}", bool(exists)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL server to use (default: SQLite)")
    parser.add_argument("--deployments", type=int, default=1_000_000)
    parser.add_argument(
        "--incidents", type=int, help="default: one for every ten deployments (100,000)"
    )
    parser.add_argument(
        "--environments",
        type=int,
        choices=(1, 2, 3),
        default=3,
        help="dev, staging, production (3) ... production only (1)",
    )
    parser.add_argument(
        "--keep",
        help="SQLite file or PostgreSQL database name to keep, and to reuse when it exists",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file (bench/report.py)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.incidents is None:
        args.incidents = args.deployments // 10

    directory = None
    if args.database_url:
        url, built = fresh_postgres(args.database_url, args.keep)
    else:
        if args.keep:
            path = Path(args.keep)
        else:
            directory = tempfile.TemporaryDirectory(prefix="interlock-bench-")
            path = Path(directory.name) / "metrics.db"
        built = path.exists()
        url = f"sqlite:///{path}"
    db = Database(url)
    upgrade(db)
    build_seconds = None  # (a kept database: built before)
    if not built:
        began = time.perf_counter()
        with building(db):
            build(db, args.deployments, args.incidents, args.environments, args.seed)
        build_seconds = time.perf_counter() - began
        print(f"(building took {build_seconds:.0f}s; not timed below)", flush=True)
    with db.engine.connect() as conn:
        counts = {
            t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("deployments", "incidents", "nodes")
        }
        production = conn.execute(
            text("SELECT COUNT(*) FROM deployments WHERE environment = 'production'")
        ).scalar_one()
    print(
        f"{db.dialect}: {counts['deployments']:,} deployments ({production:,} in production),"
        f" {counts['incidents']:,} incidents, {counts['nodes']:,} steps and gates;"
        f" best of {args.repeat}",
        flush=True,
    )
    before = os.getloadavg()[0]
    print(f"{'':55s} {'wall':>8s}  {'cpu':>8s}  (load average {load()})", flush=True)
    figures = []
    for name, seconds, note in measure(db, args.repeat):
        print(f"{name:55s} {seconds.wall:8.3f}s {seconds.cpu:8.3f}s  {note}", flush=True)
        figures.append({"what": name, "wall": seconds.wall, "cpu": seconds.cpu, "note": note})
    print(f"(load average {load()})", flush=True)
    if args.json:
        found = {
            "database": db.dialect,
            "deployments": counts["deployments"],
            "production": production,
            "incidents": counts["incidents"],
            "nodes": counts["nodes"],
            "repeat": args.repeat,
            "build_seconds": build_seconds,
            "load": [before, os.getloadavg()[0]],
            "figures": figures,
        }
        Path(args.json).write_text(json.dumps(found, indent=2))
    db.dispose()
    if directory is not None:
        directory.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("INTERLOCK_SQLITE_SYNCHRONOUS", "NORMAL")  # building only
    main()
