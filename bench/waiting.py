"""Releases waiting at approval gates: a real server's memory and threads, then all approved.

    python bench/waiting.py                       # 2,000 releases (a few minutes here)
    python bench/waiting.py --releases 10000      # the issue's figure
    python bench/waiting.py --database-url postgresql://postgres@127.0.0.1/postgres
    python bench/waiting.py --tracemalloc /tmp/heap.jsonl  # where the server's memory goes

An `interlock server` process (4 worker threads) gets ``--releases`` releases
through its API (one service each: an approval gate, then one no-op step);
once every one waits at its gate, the server's resident memory (VmRSS) and
thread count are read from /proc, and compared with the same server idle
before the first release. Then ``--clients`` clients approve them all at once
through the API, and the bench times the approvals (first sent -> last
answered) and the whole (first sent -> last release finished, from the
server's own timestamps). The making is timed per thousand releases (the server's
``created_at``) and in the server's CPU seconds, to show whether it slows as releases
accumulate.

With ``--tracemalloc FILE`` the server traces its allocations
(bench/memprobe/sitecustomize.py) and, idle, waiting and after, appends its live
heap to FILE and the bench prints its ten largest allocation sites; the figures
of memory and time are then the traced server's, not comparable with a plain run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import engine as engine_bench  # bench/engine.py: a fresh PostgreSQL database
from gated import ROOT, GatedServer
from sqlalchemy import select

from interlock.storage.schema import releases

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (bytes) and Threads of a process, from /proc/PID/status."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "VmRSS":
            found["rss"] = int(value.split()[0]) * 1024
        elif key == "Threads":
            found["threads"] = int(value)
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def heap(pid: int, path: Path, phase: str) -> None:
    """Ask the traced server for its live heap (SIGUSR2) and print its top ten sites."""
    before = path.read_text().count("\n") if path.exists() else 0
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 600
    while (path.read_text().count("\n") if path.exists() else 0) == before:
        if time.monotonic() > deadline:
            raise SystemExit("the traced server wrote no heap in 10 minutes")
        time.sleep(0.5)
    found = json.loads(path.read_text().splitlines()[-1])
    kept = found["garbage"]
    print(f"  {phase}: {found['traced_mib']:.1f} MiB traced; garbage kept frozen: {kept}")
    for site in found["lineno"][:10]:
        print(f"    {site['kib']:9,.0f} KiB {site['count']:8,} {site['where'][-90:]}")


def per_thousand(bench: GatedServer, ids: list[int]) -> list[float]:
    """Seconds between the creation of release 1, 1001, 2001, ... (server timestamps)."""
    query = select(releases.c.created_at).where(releases.c.id.in_(ids)).order_by(releases.c.id)
    with bench.db.engine.connect() as conn:
        made = [row[0] for row in conn.execute(query)]
    marks = made[::1000] + ([made[-1]] if len(made) % 1000 != 1 else [])
    return [round((b - a).total_seconds(), 1) for a, b in zip(marks, marks[1:], strict=False)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", type=int, default=2000, help="default 2000; issue: 10000")
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--tracemalloc", type=Path, default=None, help="trace the server's heap into this file"
    )
    args = parser.parse_args(argv)

    url = engine_bench._fresh_pg_database(args.database_url) if args.database_url else None
    env = {}
    if args.tracemalloc is not None:
        env = {
            "PYTHONPATH": str(ROOT / "bench" / "memprobe"),
            "INTERLOCK_BENCH_TRACEMALLOC": str(args.tracemalloc.resolve()),
            "PYTHONTRACEMALLOC": "1",
        }
    bench = GatedServer(args.releases, url, env=env).start()
    try:
        idle = proc_status(bench.pid)
        if args.tracemalloc:
            heap(bench.pid, args.tracemalloc, "idle")
        made = time.monotonic()
        cpu = cpu_seconds(bench.pid)
        ids = bench.create(0, args.releases, clients=args.clients)
        bench.wait_until("the gates", lambda: bench.waiting(ids) == len(ids), 1800, 0.1)
        made = time.monotonic() - made
        cpu = cpu_seconds(bench.pid) - cpu
        waiting = proc_status(bench.pid)
        if args.tracemalloc:
            heap(bench.pid, args.tracemalloc, "waiting")
        start = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(bench.approve, ids))
        answered = time.monotonic() - start
        bench.wait_until("every release to finish", lambda: not bench.unfinished(ids), 1800, 0.1)
        finished = time.monotonic() - start
        window = bench.window(ids)
        thousands = per_thousand(bench, ids)
        after = proc_status(bench.pid)
        if args.tracemalloc:
            heap(bench.pid, args.tracemalloc, "after")
    finally:
        bench.stop()
    result = {
        "database": bench.db.dialect,
        "releases": args.releases,
        "clients": args.clients,
        "create_seconds": made,
        "create_server_cpu_seconds": cpu,
        "create_seconds_per_1000": thousands,
        "idle_rss_mb": idle["rss"] / 2**20,
        "idle_threads": idle["threads"],
        "waiting_rss_mb": waiting["rss"] / 2**20,
        "waiting_threads": waiting["threads"],
        "after_rss_mb": after["rss"] / 2**20,
        "approve_seconds": answered,
        "all_finished_seconds": finished,
        "engine_window_seconds": window,
    }
    print(
        f"{result['database']}: {args.releases:,} releases made and at their gates in"
        f" {made:.1f} s ({cpu:.1f} s of the server's CPU; per 1,000: {thousands} s)\n"
        f"  server idle: {result['idle_rss_mb']:.0f} MB RSS, {idle['threads']} threads\n"
        f"  {args.releases:,} waiting: {result['waiting_rss_mb']:.0f} MB RSS,"
        f" {waiting['threads']} threads\n"
        f"  all approved by {args.clients} clients: approvals answered in {answered:.1f} s,"
        f" all finished {finished:.1f} s after the first was sent"
        f" (first gate passed -> last release finished: {window:.1f} s)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
