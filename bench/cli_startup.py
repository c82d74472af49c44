"""How fast `interlock` answers, against a bare Python start on the same machine.

    python bench/cli_startup.py

The CLI imports its heavy parts (FastAPI, SQLAlchemy, httpx, pydantic) only in
the commands that need them; this measures what a user waits for (wall time) and
what each answer costs the machine (CPU seconds, user + system, of the process):
on a loaded machine, or in a test suite that runs the CLI hundreds of times, the
CPU is the figure to compare.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

INTERLOCK = str(Path(sys.executable).parent / "interlock")


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command: list[str], runs: int = 15) -> tuple[float, float]:
    """The median wall and CPU seconds of ``runs`` runs of ``command``."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), _children_cpu()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    bare, bare_cpu = timed([sys.executable, "-c", "pass"])
    print(f"python -c pass:          {bare * 1000:6.1f} ms, {bare_cpu:.3f} CPU-s (baseline)")
    for label, args in (
        ("interlock --help", ["--help"]),
        ("interlock --version", ["--version"]),
        ("interlock server --help", ["server", "--help"]),
    ):
        wall, cpu = timed([INTERLOCK, *args])
        print(
            f"{label + ':':24} {wall * 1000:6.1f} ms, {cpu:.3f} CPU-s "
            f"({wall / bare:.1f}x the baseline)"
        )


if __name__ == "__main__":
    main()
