"""CPU seconds per test, for finding where the suite's time goes on a loaded machine.

``pytest -p tests.support.cputime`` appends one line per test to the file named by
``INTERLOCK_TEST_CPUTIME`` (default ``.cputime.tsv``): the test's wall seconds and
its CPU seconds (user + system) of the test process and of the children it has
reaped (server subprocesses, CLI runs, Chromium once its browser closes). Wall
time on a busy machine mostly measures the other load; CPU seconds do not.
Sum the file per directory with ``python -m tests.support.cputime FILE``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

TARGET = Path(os.environ.get("INTERLOCK_TEST_CPUTIME", ".cputime.tsv"))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    wall, cpu = time.monotonic(), _cpu()
    yield
    line = f"{item.nodeid}\t{time.monotonic() - wall:.2f}\t{_cpu() - cpu:.2f}\n"
    with TARGET.open("a") as out:
        out.write(line)


def main(path: str) -> None:
    """Per directory: tests, wall and CPU seconds; then the 20 dearest tests by CPU."""
    rows = [line.split("\t") for line in Path(path).read_text().splitlines() if line]
    per: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for nodeid, wall, cpu in rows:
        key = "/".join(nodeid.split("/")[:2])
        per[key][0] += 1
        per[key][1] += float(wall)
        per[key][2] += float(cpu)
    print(f"{'directory':40} {'tests':>6} {'wall s':>8} {'cpu s':>8}")
    for key, (count, wall_s, cpu_s) in sorted(per.items()):
        print(f"{key:40} {count:6.0f} {wall_s:8.1f} {cpu_s:8.1f}")
    print()
    for nodeid, wall, cpu in sorted(rows, key=lambda r: -float(r[2]))[:20]:
        print(f"{float(cpu):7.1f} cpu {float(wall):7.1f} wall  {nodeid}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(TARGET))
