"""Run every benchmark of issue 19 once and write docs/performance.md from the figures.

    python bench/report.py                      # the issue's sizes (about half an hour here)
    python bench/report.py --approvals 200 --waiting 2000 --events 100000   # quicker
    python bench/report.py --only latency,audit # rerun some; the others' last figures are kept
    python bench/report.py --only metrics --metrics-sizes 1000000,10000000   # delivery metrics

Each benchmark runs as its own process and leaves its figures as JSON in
``--results`` (kept between runs), from which the page is written whole:
the machine, the commands, each figure beside its peer's or baseline from the
same run, and the issue's targets, met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PG = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = [
    "peers",
    "engine-sqlite",
    "engine-pg",
    "latency-sqlite",
    "latency-pg",
    "audit",
    "waiting",
    "metrics",
]


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    """What each part runs, as a person would type it (python = this interpreter)."""
    return {
        "peers": ["bench/peers/run.py", "--runs", str(args.runs)],
        "engine-sqlite": ["bench/engine.py"],
        "engine-pg": ["bench/engine.py", "--database-url", PG, "--mode", "processes"]
        + ["--workers", "1,4"],
        "latency-sqlite": ["bench/latency.py", "--approvals", str(args.approvals)],
        "latency-pg": ["bench/latency.py", "--approvals", str(args.approvals)]
        + ["--database-url", PG],
        "waiting": ["bench/waiting.py", "--releases", str(args.waiting)],
        "audit": ["bench/audit.py", "--events", str(args.events)],
    }


def metrics_runs(args: argparse.Namespace) -> dict[str, list[str]]:
    """bench/metrics.py once per database and size, each built once and kept (in
    ``--results``, or a PostgreSQL database named by its size) for the next run."""
    runs = {}
    for database, sizes in (("sqlite", args.metrics_sizes), ("pg", args.metrics_pg_sizes)):
        for size in (int(n) for n in sizes.split(",") if n.strip()):
            command = ["bench/metrics.py", "--deployments", str(size), "--repeat", "3"]
            if database == "pg":
                command += ["--database-url", PG, "--keep", f"interlock_bench_metrics_{size}"]
            else:
                command += ["--keep", str(args.results / f"metrics-{size}.db")]
            runs[f"metrics-{database}-{size}"] = command
    return runs


def run_part(name: str, command: list[str], results: Path) -> None:
    out = results / f"{name}.json"
    json_args = [] if name.startswith("engine") else ["--json", str(out)]
    print(f"== {name}: python {' '.join(command)}", flush=True)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *command, *json_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    print(done.stdout, done.stderr[-2000:] if done.returncode else "", flush=True)
    if done.returncode != 0:
        figures: dict[str, Any] = {"error": (done.stderr or done.stdout)[-400:]}
    elif name.startswith("engine"):
        figures = parse_engine(done.stdout)
    else:
        figures = json.loads(out.read_text())
    figures["command"] = "python " + " ".join(command)
    figures["seconds"] = time.monotonic() - started
    figures["load"] = [load_before, os.getloadavg()[0]]
    out.write_text(json.dumps(figures, indent=2))


def parse_engine(text: str) -> dict[str, Any]:
    """bench/engine.py's table rows: steps/s by scenario and workers."""
    rows: dict[str, float] = {}
    for line in text.splitlines():
        commits = re.match(r"\s+(.*connections?): ([\d,]+)/s$", line)
        if commits:
            rows[f"raw durable single-row commits, {commits.group(1)}"] = float(
                commits.group(2).replace(",", "")
            )
            continue
        title, rest = line[:40].strip(), line[40:].split()
        if len(rest) < 3 or not title or title.startswith("scenario"):
            continue
        words = rest[:2] if rest[0] != "-" else ["-"]
        rate = rest[len(words)].replace(",", "")
        if re.fullmatch(r"\d+", rate):
            rows[f"{title} [{' '.join(words)}]"] = float(rate)
    return {"rows": rows}


def machine() -> dict[str, Any]:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", info)
    memory = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    found = {
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "cpu": model.group(1).strip() if model else platform.processor(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": None,
    }
    try:
        import psycopg

        with psycopg.connect(PG, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            found["postgresql"] = row[0] if row else None
    except Exception as exc:  # any failure is shown in the page instead
        found["postgresql"] = f"not reachable ({type(exc).__name__})"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="peers: measured runs of each")
    parser.add_argument("--approvals", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=10_000, help="releases for waiting.py")
    parser.add_argument("--events", type=int, default=1_000_000, help="events for audit.py")
    parser.add_argument(
        "--metrics-sizes",
        default="1000000",
        help="metrics: deployments on SQLite, comma-separated (10000000 builds for about an hour)",
    )
    parser.add_argument(
        "--metrics-pg-sizes", default="1000000", help="metrics: deployments on PostgreSQL"
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument(
        "--results", type=Path, default=Path(tempfile.gettempdir()) / "interlock-bench-results"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--note", default="", help="a line for the page's machine section")
    args = parser.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(wanted) - set(PARTS)
    if unknown:
        raise SystemExit(f"--only: unknown part(s) {', '.join(sorted(unknown))}")
    every = commands(args)
    for name in wanted:
        if name == "metrics":
            for run, command in metrics_runs(args).items():
                run_part(run, command, args.results)
            continue
        run_part(name, every[name], args.results)
    found: dict[str, Any] = {
        p: json.loads((args.results / f"{p}.json").read_text())
        for p in PARTS
        if (args.results / f"{p}.json").exists()
    }
    measured = sorted(args.results.glob("metrics-*.json"))  # every size measured so far
    if measured:
        found["metrics"] = {"runs": [json.loads(path.read_text()) for path in measured]}
    meta = {
        "machine": machine(),
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "note": args.note,
    }
    (args.results / "machine.json").write_text(json.dumps(meta, indent=2))

    from report_page import render

    args.out.write_text(render(meta, found))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
