"""Interlock and DBOS side by side on the same workloads, in one invocation.

    python bench/peers/run.py                 # warm-up, then 3 runs each, alternately
    python bench/peers/run.py --runs 5 --json /tmp/peers.json

Workload A: one release of 100 sequential no-op steps (DBOS: one workflow of
100 sequential steps). Workload B: 200 releases x 5 steps started together
(DBOS: 200 workflows of 5 steps started together). Each workload runs once
on each system as a warm-up, then ``--runs`` times on each, alternating
Interlock and DBOS so that a busy moment of the machine hits both; the figure
is the median per-step time, from each system's own timestamps (Interlock:
first attempt started -> last attempt finished, bench/engine.py's
``measure``; DBOS: the same from its ``operation_outputs`` rows).

DBOS (pinned, ``DBOS_VERSION``) is installed into its own virtual
environment in the temp folder, reused on the next run, and never becomes a
project dependency; bench/peers/dbos_driver.py runs inside it.

Durability, the same for both: SQLite in WAL mode with ``synchronous=FULL``
(Interlock's defaults; DBOS's file is switched to WAL and its connections get
``synchronous=FULL``). Concurrency is each system's own default: Interlock's 4
worker threads (bench/engine.py on SQLite), DBOS's executor (a thread per
workflow).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import engine as engine_bench  # noqa: E402  (bench/engine.py)

DBOS_VERSION = "3.4.0"
INTERLOCK_WORKERS = 4


def dbos_python(version: str = DBOS_VERSION) -> Path:
    """DBOS's own virtual environment under the temp folder, made once and reused."""
    home = Path(tempfile.gettempdir()) / f"interlock-peers-dbos-{version}"
    python = home / "bin" / "python"
    marker = home / ".installed"
    if not marker.exists():
        print(f"installing dbos=={version} into {home} ...", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"dbos=={version}"],
            check=True,
            timeout=600,
        )
        marker.write_text(version)
    return python


class Dbos:
    """One launched DBOS process, driven a workload at a time."""

    def __init__(self, python: Path, path: Path) -> None:
        self.process = subprocess.Popen(
            [str(python), str(HERE / "dbos_driver.py"), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the DBOS driver stopped (exit {self.process.wait(10)})")
        return dict(json.loads(line))

    def run(self, command: str) -> float:
        """Seconds per step of one run."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        return float(answer["seconds"]) / int(answer["steps"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Interlock:
    """bench/engine.py's engine and scenarios on a SQLite file of its own."""

    def __init__(self, tmp: Path, releases: int, pipeline_steps: int) -> None:
        os.environ.setdefault("INTERLOCK_SQLITE_SYNCHRONOUS", "FULL")
        self.releases = releases
        config = tmp / "interlock.yaml"
        config.write_text(engine_bench.config_text(releases, 5, pipeline_steps))
        self.db = engine_bench.Database(
            f"sqlite:///{tmp / 'interlock.db'}", pool_size=INTERLOCK_WORKERS + 4
        )
        engine_bench.upgrade(self.db)
        self.engine = engine_bench.Engine(
            self.db, settings=engine_bench.Settings(tick=1.0, poll_interval=0.5)
        )
        self.configs = self.engine.configs
        self.configs.load_file(config, actor="bench")
        with self.db.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        self.info = {"journal_mode": str(mode).upper(), "synchronous": names[int(level or 0)]}

    def run(self, workload: str) -> float:
        """Seconds per step of one run."""
        refs = ["pipeline"] if workload == "A" else [f"svc{n}" for n in range(self.releases)]
        rate, _ = engine_bench.measure(
            self.engine,
            self.configs,
            lambda: engine_bench.ThreadWorkers(self.engine, INTERLOCK_WORKERS),
            refs,
            count=False,  # nothing counts the statements, as nothing does for DBOS
        )
        return 1.0 / rate

    def close(self) -> None:
        self.db.dispose()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs of each (default 3)")
    parser.add_argument("--releases", type=int, default=200, help="workload B's releases")
    parser.add_argument("--steps", type=int, default=100, help="workload A's steps")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="interlock-peers-"))
    interlock = Interlock(tmp, args.releases, args.steps)
    dbos = Dbos(dbos_python(), tmp / "dbos.sqlite")
    commands = {"A": f"A {args.steps}", "B": f"B {args.releases} 5"}
    times: dict[str, dict[str, list[float]]] = {w: {"interlock": [], "dbos": []} for w in "AB"}
    try:
        for workload in "AB":
            interlock.run(workload)  # warm-up, not counted
            dbos.run(commands[workload])
            for _ in range(args.runs):
                times[workload]["interlock"].append(interlock.run(workload))
                times[workload]["dbos"].append(dbos.run(commands[workload]))
    finally:
        dbos.close()
        interlock.close()

    titles = {
        "A": f"A: 1 x {args.steps} sequential steps",
        "B": f"B: {args.releases} x 5 steps together",
    }
    result: dict[str, Any] = {
        "dbos_version": dbos.info["version"],
        "runs": args.runs,
        "settings": {
            "interlock": {**interlock.info, "workers": f"{INTERLOCK_WORKERS} threads"},
            "dbos": {
                "journal_mode": dbos.info["journal_mode"],
                "synchronous": dbos.info["synchronous"],
                "workers": "a thread per workflow",
            },
        },
        "workloads": {},
    }
    print(f"DBOS {dbos.info['version']}, SQLite {dbos.info['sqlite']}; medians of {args.runs}")
    for name, system in result["settings"].items():
        print(
            f"  {name}: journal_mode={system['journal_mode']}, synchronous={system['synchronous']}"
            f", {system['workers']}"
        )
    print(f"{'workload':<34} {'Interlock ms/step':>17} {'DBOS ms/step':>12} {'ratio':>6}")
    for workload in "AB":
        ours = statistics.median(times[workload]["interlock"]) * 1000
        theirs = statistics.median(times[workload]["dbos"]) * 1000
        result["workloads"][workload] = {
            "title": titles[workload],
            "interlock_ms": ours,
            "dbos_ms": theirs,
            "ratio": ours / theirs,
            "interlock_runs_ms": [t * 1000 for t in times[workload]["interlock"]],
            "dbos_runs_ms": [t * 1000 for t in times[workload]["dbos"]],
        }
        print(f"{titles[workload]:<34} {ours:>17.2f} {theirs:>12.2f} {ours / theirs:>6.2f}")
    print("ratio = Interlock / DBOS per step (the target is <= 0.5)")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
