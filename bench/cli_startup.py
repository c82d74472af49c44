"""How fast `interlock --help` answers, against a bare Python start on the same machine.

    python bench/cli_startup.py

The CLI imports its heavy parts (FastAPI, SQLAlchemy, httpx, pydantic) only in
the commands that need them; this measures what a user waits for.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

INTERLOCK = str(Path(sys.executable).parent / "interlock")


def timed(command: list[str], runs: int = 15) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    bare = timed([sys.executable, "-c", "pass"])
    help_ = timed([INTERLOCK, "--help"])
    version = timed([INTERLOCK, "--version"])
    print(f"python -c pass:       {bare * 1000:6.1f} ms (baseline)")
    print(f"interlock --help:     {help_ * 1000:6.1f} ms ({help_ / bare:.1f}x the baseline)")
    print(f"interlock --version:  {version * 1000:6.1f} ms ({version / bare:.1f}x the baseline)")


if __name__ == "__main__":
    main()
