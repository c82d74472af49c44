"""`audit verify` over a large audit log: events per second.

    python bench/audit.py                          # 1,000,000 events on SQLite
    python bench/audit.py --events 100000
    python bench/audit.py --database-url postgresql://postgres@127.0.0.1/postgres

The log is built fast and valid by tests/support/audit_chain.py: bodies and
hashes from the project's own audit/chain.py, written by direct inserts in
large transactions, the head record set to the last event. Then it is
verified in one pass in this process, by the server's own verify path in
this process (``views.audit_verify``, what GET /api/v1/audit/verify runs:
from 200,000 events on, in stretches, one process a core), and end to end
through a real `interlock server` on the same database: GET
/api/v1/audit/verify (what the CLI asks for, with a long client timeout), then
`interlock audit verify` as a person runs it (its `--timeout`, an hour by
default: a failure is reported, not hidden). Both add the few events the server writes
when it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import engine as engine_bench  # bench/engine.py: the engine, the schema, a fresh PostgreSQL
from gated import GatedServer  # also puts the repository on sys.path (tests.support)
from tests.support.audit_chain import build  # the chain the verify tests build too

from interlock.engine.views import AUDIT_SPANS_FROM, audit_verify
from interlock.storage.schema import audit_events


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    url = engine_bench._fresh_pg_database(args.database_url) if args.database_url else None
    bench = GatedServer(1, url)  # not started yet: its database is written first
    db = bench.db
    (bench.workdir / ".interlock").mkdir(mode=0o700, exist_ok=True)
    engine_bench.upgrade(db)
    with db.engine.connect() as conn:
        if conn.execute(audit_events.select().limit(1)).first() is not None:
            raise SystemExit("the fresh database already has audit events")
    started = time.perf_counter()
    build(db.engine, args.events)
    built = time.perf_counter() - started

    started = time.perf_counter()
    result = audit_verify(engine_bench.Engine(db), processes=1)
    one_pass = time.perf_counter() - started
    if not result.ok or result.count != args.events:
        raise SystemExit(f"the built log does not verify: {result.problems[:3]}")
    processes = min(os.cpu_count() or 1, 8) if args.events >= AUDIT_SPANS_FROM else 1
    started = time.perf_counter()
    result = audit_verify(engine_bench.Engine(db))  # as the server runs it
    in_process = time.perf_counter() - started
    if not result.ok or result.count != args.events:
        raise SystemExit(f"the built log does not verify in stretches: {result.problems[:3]}")

    bench.start()
    try:
        started = time.perf_counter()
        http = bench.client("admin").get("/audit/verify", timeout=1800)
        over_http = time.perf_counter() - started
        started = time.perf_counter()
        answer = bench.server.cli(
            "audit",
            "verify",
            "--format",
            "json",
            timeout=1800,
            INTERLOCK_TOKEN=bench.secrets["admin"],
        )
        cli = time.perf_counter() - started
    finally:
        bench.stop()
    if http.status_code != 200 or not http.json()["ok"]:
        raise SystemExit(f"GET /api/v1/audit/verify: {http.status_code} {http.text[:300]}")
    served = int(http.json()["count"])
    figures: dict[str, Any] = {
        "database": db.dialect,
        "events": args.events,
        "build_seconds": built,
        "one_pass_seconds": one_pass,
        "one_pass_events_per_second": args.events / one_pass,
        "processes": processes,
        "verify_seconds": in_process,
        "events_per_second": args.events / in_process,
        "http_events": served,
        "http_seconds": over_http,
        "http_events_per_second": served / over_http,
        "cli_seconds": cli,
        "cli_events_per_second": served / cli if answer.returncode == 0 else None,
        "cli_error": None if answer.returncode == 0 else (answer.stderr or answer.stdout).strip(),
    }
    print(
        f"{db.dialect}: {args.events:,} events built in {built:.1f} s\n"
        f"  verify in one pass (in process): {one_pass:.2f} s,"
        f" {figures['one_pass_events_per_second']:,.0f} events/s\n"
        f"  verify as the server runs it ({processes} process(es)): {in_process:.2f} s,"
        f" {figures['events_per_second']:,.0f} events/s\n"
        f"  GET /api/v1/audit/verify of a real server: {over_http:.2f} s for {served:,} events,"
        f" {figures['http_events_per_second']:,.0f} events/s\n"
        + (
            f"  `interlock audit verify`: {cli:.2f} s, {figures['cli_events_per_second']:,.0f}"
            " events/s"
            if answer.returncode == 0
            else f"  `interlock audit verify` failed after {cli:.1f} s: {figures['cli_error']}"
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
