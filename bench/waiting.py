"""Releases waiting at approval gates: a real server's memory and threads, then all approved.

    python bench/waiting.py                       # 2,000 releases (a few minutes here)
    python bench/waiting.py --releases 10000      # the issue's figure
    python bench/waiting.py --database-url postgresql://postgres@127.0.0.1/postgres

An `interlock server` process (4 worker threads) gets ``--releases`` releases
through its API (one service each: an approval gate, then one no-op step);
once every one waits at its gate, the server's resident memory (VmRSS) and
thread count are read from /proc, and compared with the same server idle
before the first release. Then ``--clients`` clients approve them all at once
through the API, and the bench times the approvals (first sent -> last
answered) and the whole (first sent -> last release finished, from the
server's own timestamps).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import engine as engine_bench  # bench/engine.py: a fresh PostgreSQL database
from gated import GatedServer


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--releases", type=int, default=2000, help="default 2000; issue: 10000")
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    url = engine_bench._fresh_pg_database(args.database_url) if args.database_url else None
    bench = GatedServer(args.releases, url).start()
    try:
        idle = proc_status(bench.pid)
        made = time.monotonic()
        ids = bench.create(0, args.releases, clients=args.clients)
        bench.wait_until("the gates", lambda: bench.waiting(ids) == len(ids), 1800, 0.1)
        made = time.monotonic() - made
        waiting = proc_status(bench.pid)
        start = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(bench.approve, ids))
        answered = time.monotonic() - start
        bench.wait_until("every release to finish", lambda: not bench.unfinished(ids), 1800, 0.1)
        finished = time.monotonic() - start
        window = bench.window(ids)
        after = proc_status(bench.pid)
    finally:
        bench.stop()
    result = {
        "database": bench.db.dialect,
        "releases": args.releases,
        "clients": args.clients,
        "create_seconds": made,
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
        f" {made:.1f} s\n"
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
