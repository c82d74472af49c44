"""Wake-up latency: an approval recorded -> the next step started, in a real server.

    python bench/latency.py                       # SQLite, 200 approvals
    python bench/latency.py --approvals 1000      # the issue's figure
    python bench/latency.py --database-url postgresql://postgres@127.0.0.1/postgres

Releases (one service each: an approval gate, then one no-op step) are made
through the API of an `interlock server` process and brought to their gates;
then they are approved one at a time through the API, each once the previous
release has finished, so no approval waits behind another's work. The latency
is the engine's own: the gate's ``finished_at`` (the approval's time) to the
step's ``started_at``, both written by the server. p50 and p99 over all of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import engine as engine_bench  # bench/engine.py: a fresh PostgreSQL database
from gated import GatedServer, percentile


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--approvals", type=int, default=200, help="default 200; the issue: 1000")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--workers", type=int, default=4, help="the server's worker threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    url = engine_bench._fresh_pg_database(args.database_url) if args.database_url else None
    bench = GatedServer(args.approvals, url, workers=args.workers).start()
    try:
        ids = bench.create(0, args.approvals)
        bench.wait_until("the gates", lambda: bench.waiting(ids) == len(ids), 600)
        started = time.monotonic()
        for release_id in ids:
            bench.approve(release_id)
            bench.wait_until(
                f"release {release_id}", lambda r=release_id: not bench.unfinished([r]), 60, 0.002
            )
            if time.monotonic() - started > 1200:
                raise SystemExit("the approvals took more than 20 minutes")
        latencies = [s * 1000 for s in bench.wake_ups(ids)]
    finally:
        bench.stop()
    result = {
        "database": bench.db.dialect,
        "approvals": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "mean_ms": statistics.fmean(latencies),
        "max_ms": max(latencies),
    }
    print(
        f"{result['database']}: approval recorded -> next step started over {len(latencies)}"
        f" approvals: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
        f" (mean {result['mean_ms']:.1f}, max {result['max_ms']:.1f})"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
