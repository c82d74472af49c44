"""Where an approval's wake-up spends its time, in-process, part by part.

    python bench/wake_parts.py                      # SQLite, 300 approvals
    python bench/wake_parts.py --database-url postgresql://postgres@127.0.0.1/postgres
    python bench/wake_parts.py --profile 20         # also cProfile's top 20 functions

The same gated releases as bench/latency.py (an approval gate, then one no-op
step), in this process with the server's 4 workers: each release is approved
by calling what the API route calls (``approvals.give``), once the previous
release finished. Timestamps (``perf_counter``) split each approval into:

- ``begin``: the call -> its transaction began (the SQLite writer lock, a
  pooled connection, BEGIN);
- ``work``: the approval's reads and writes, up to the ready hook (the gate
  decided, the deployment advanced, the next step readied);
- ``claim``: the ready hook, which claims the step for an idle worker in
  that transaction (``step.started``: the step's ``started_at``);
- ``flush``: the hook -> COMMIT sent (revisions, facts, audit chain, NOTIFY);
- ``commit``: COMMIT (the fsync);
- ``handed``: committed -> the worker runs the step's executor.

``started`` (call -> step claimed) is the figure bench/latency.py reports from
the database's timestamps; ``running`` (call -> executor started) is what a
person would call the step starting. Statements are counted per approval, and
so are the garbage collections that ran during one. What the HTTP layer adds
(parsing, authentication) is bench/latency.py's figure minus ``started``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

import engine as engine_bench  # noqa: E402  (bench/engine.py)
from gated import config_text  # noqa: E402  (bench/gated.py: N approval-gated services)
from sqlalchemy import event  # noqa: E402

from interlock.domain.records import Item  # noqa: E402
from interlock.engine import approvals, worker  # noqa: E402
from interlock.engine.access import Access  # noqa: E402
from interlock.engine.core import Engine, Settings  # noqa: E402
from interlock.engine.identity import Identity, principal_of  # noqa: E402
from interlock.engine.releases import create_release  # noqa: E402
from interlock.engine.runtime import Runtime  # noqa: E402
from interlock.storage.db import Database  # noqa: E402
from interlock.storage.migrate import upgrade  # noqa: E402

PAUSES: dict[int, list[float]] = {}  # the collector's pauses, by generation
PARTS = ("begin", "work", "claim", "flush", "commit", "handed")


class Marks:
    """Per-approval timestamps, set from the API thread and the worker threads."""

    def __init__(self) -> None:
        self.on = False
        self.t: dict[str, float] = {}
        self.statements = 0
        self.gcs = 0
        self.ran = threading.Event()
        self.sql: list[tuple[float, str]] = []

    def reset(self) -> None:
        self.t = {}
        self.statements = 0
        self.gcs = 0
        self.ran.clear()
        self.sql = []

    def mark(self, name: str) -> None:
        if self.on and name not in self.t:
            self.t[name] = time.perf_counter()


def instrument(engine: Engine, runtime: Runtime, marks: Marks) -> None:
    sa = engine.db.engine
    here = threading.current_thread()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if marks.on and threading.current_thread() is here:
            marks.statements += 1
            marks.sql.append((time.perf_counter(), " ".join(sql.split())[:110]))
            if sql.startswith("BEGIN") or "t_begin" not in marks.t:
                marks.mark("t_begin")

    def commit(_conn: Any) -> None:
        if threading.current_thread() is here:
            marks.mark("t_commit")

    event.listen(sa, "before_cursor_execute", statement)
    event.listen(sa, "commit", commit)
    pool = runtime.pool
    assert pool is not None
    hand_over = pool._hand_over

    def timed_hand_over(tx: Any) -> None:
        marks.mark("t_hook")
        tx.ended.append(lambda committed: marks.mark("t_committed"))
        hand_over(tx)
        marks.mark("t_claimed")

    hooks = engine.db.ready_hooks
    hooks[hooks.index(hand_over)] = timed_hand_over
    execute = worker.execute

    def timed_execute(engine: Engine, job: Any) -> Any:
        if job.node.kind == "step":
            marks.mark("t_run")
            marks.ran.set()
        return execute(engine, job)

    worker.execute = timed_execute  # type: ignore[assignment]

    started: list[float] = []

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
            if marks.on:
                marks.gcs += 1
        elif started:
            PAUSES.setdefault(info["generation"], []).append(time.perf_counter() - started[0])

    gc.callbacks.append(collected)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--approvals", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before approving")
    parser.add_argument("--statements", action="store_true", help="print the last one's SQL")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="interlock-wake-"))
    if args.database_url:
        url = engine_bench._fresh_pg_database(args.database_url)
    else:
        url = f"sqlite:///{workdir / 'interlock.db'}"
    db = Database(url)
    upgrade(db)
    engine = Engine(db, settings=Settings())
    config = workdir / "interlock.yaml"
    config.write_text(config_text(args.approvals))
    engine.configs.load_file(config, actor="bench")
    identity = Identity(engine)
    identity.add_user(actor="bench", name="alice")
    loaded = engine.configs.loaded()
    assert loaded is not None
    with db.read() as tx:
        user = tx.get_user("alice")
        assert user is not None
        alice = principal_of(tx, user, loaded.config.roles, loaded.config.teams)
    access = Access(engine.configs)

    runtime = Runtime(engine, workers=4, scheduler=False)
    runtime.start()
    marks = Marks()
    instrument(engine, runtime, marks)
    ids = [
        create_release(
            engine, engine.configs, actor="admin", items=[Item(f"svc{n}", "1.0")], reason="bench"
        ).id
        for n in range(args.approvals)
    ]
    pool = runtime.pool
    assert pool is not None
    # Every release at its gate, and every worker idle, before the first approval.
    deadline = time.monotonic() + 600
    while engine_bench._pending(db, ids) != len(ids) or len(pool._idle._slots) < pool.count:
        if time.monotonic() > deadline:
            raise SystemExit("the releases never reached their gates")
        time.sleep(0.05)
    time.sleep(0.5)

    rows: list[dict[str, float]] = []
    if args.freeze:
        gc.freeze()
    PAUSES.clear()
    profiler = cProfile.Profile() if args.profile else None
    for release_id in ids:
        while len(pool._idle._slots) < pool.count:  # as latency.py: the last one finished
            time.sleep(0.0005)
        marks.reset()
        marks.on = True
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        approvals.give(
            engine,
            access,
            alice,
            release_id=release_id,
            environment=None,
            gate=None,
            decision="approve",
            comment=None,
        )
        if profiler is not None:
            profiler.disable()
        if not marks.ran.wait(30):
            raise SystemExit(f"release {release_id}: its step never ran")
        marks.on = False
        t = marks.t
        if not all(k in t for k in ("t_hook", "t_claimed", "t_commit", "t_committed", "t_run")):
            raise SystemExit(f"release {release_id}: no hand-over ({sorted(t)})")
        ms = {
            "begin": t["t_begin"] - t0,
            "work": t["t_hook"] - t["t_begin"],
            "claim": t["t_claimed"] - t["t_hook"],
            "flush": t["t_commit"] - t["t_claimed"],
            "commit": t["t_committed"] - t["t_commit"],
            "handed": t["t_run"] - t["t_committed"],
            "started": t["t_claimed"] - t0,
            "running": t["t_run"] - t0,
        }
        row = {k: v * 1000 for k, v in ms.items()}
        row["statements"] = marks.statements
        row["gcs"] = marks.gcs
        rows.append(row)
    runtime.stop(drain=5)
    db.dispose()

    def pct(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.5) - 1))]

    result: dict[str, Any] = {"database": db.dialect, "approvals": len(rows)}
    print(f"{db.dialect}: {len(rows)} approvals, ms per part (p50 / p99 / mean)")
    for part in (*PARTS, "started", "running"):
        values = [r[part] for r in rows]
        result[part] = {
            "p50": pct(values, 0.5),
            "p99": pct(values, 0.99),
            "mean": statistics.fmean(values),
        }
        print(
            f"  {part:<9} {result[part]['p50']:7.2f} {result[part]['p99']:7.2f}"
            f" {result[part]['mean']:7.2f}"
        )
    statements = [r["statements"] for r in rows]
    result["statements"] = statistics.median(statements)
    with_gc = [r["started"] for r in rows if r["gcs"]]
    print(
        f"  statements per approval: median {statistics.median(statements):.0f}"
        f" (min {min(statements)}, max {max(statements)});"
        f" approvals with a GC run: {len(with_gc)}"
        + (f" (their p50 started {statistics.median(with_gc):.2f} ms)" if with_gc else "")
    )
    for generation, pauses in sorted(PAUSES.items()):
        print(
            f"  GC generation {generation}: {len(pauses)} runs, max {max(pauses) * 1000:.1f} ms,"
            f" mean {statistics.fmean(pauses) * 1000:.2f} ms"
        )
    slowest = sorted(rows, key=lambda r: r["started"])[-5:]
    print("  the 5 slowest, ms per part:")
    for r in slowest:
        print(
            "   ", " ".join(f"{k} {r[k]:.1f}" for k in (*PARTS, "started")), f"gcs {r['gcs']:.0f}"
        )
    if args.statements:
        print("  the last approval's statements: ms since the previous one, SQL")
        at = [t for t, _ in marks.sql]
        for n, (t, sql) in enumerate(marks.sql):
            print(f"  {n + 1:2d} {(t - at[max(0, n - 1)]) * 1000:6.2f} {sql}")
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(args.profile)
        stats.sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
