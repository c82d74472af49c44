"""CPU seconds per test, for finding where the suite's time goes on a loaded machine.

``pytest -p tests.support.cputime`` appends one line per test to the file named by
``INTERLOCK_TEST_CPUTIME`` (default ``.cputime.tsv``): the test's wall seconds and
its CPU seconds (user + system) of the test process and of its descendants:
those it has reaped (server subprocesses, CLI runs) and those still running at
the test's start or end (a process that outlives a test, like the Chromium a run
of browser tests shares, is charged to each test for what it used during it, not
all at once to the test whose teardown closes it). Wall time on a busy machine
mostly measures the other load; CPU seconds do not.
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


TICK = os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + _running()


def _running() -> float:
    """CPU seconds of this process's live descendants: their own and their reaped children's.

    When one of them is reaped, its seconds move into its parent's reaped-children count,
    so a sum over the whole tree taken before and after a test gives what the test used.
    """
    children: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        fields = stat.rpartition(")")[2].split()
        # fields[0] is field 3 of proc(5): state, ppid, ... utime (14) stime cutime cstime
        children[int(fields[1])].append(int(name))
        ticks[int(name)] = sum(int(f) for f in fields[11:15])
    total, frontier = 0, list(children[os.getpid()])
    while frontier:
        pid = frontier.pop()
        total += ticks[pid]
        frontier += children[pid]
    return total / TICK


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
