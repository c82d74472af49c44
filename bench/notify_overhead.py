"""What the notification outbox costs a release: releases driven to idle, with and without.

    python bench/notify_overhead.py [RELEASES]        # SQLite in a temp dir

Each release goes through two environments with one no-op step each, in the
calling thread (tests/support/driver.py), on a manual clock. "with" has a
webhook channel and a route of every event to it (four messages a release,
written in the transactions of their events); nothing is sent. Runs alternate,
twice each: the shared machine's noise shows in the spread.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import FAST  # noqa: E402
from tests.integration.conftest import Pilot  # noqa: E402
from tests.support.driver import EngineDriver  # noqa: E402

from interlock.engine.clock import ManualClock  # noqa: E402
from interlock.engine.core import Engine  # noqa: E402
from interlock.notifications import install  # noqa: E402
from interlock.storage.db import Database  # noqa: E402
from interlock.storage.migrate import upgrade  # noqa: E402

BASE = """version: 1
environments: [{name: staging}, {name: production}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""
NOTIFY = """notifications:
  channels: [{name: hook, kind: webhook, url: "http://127.0.0.1:9/never"}]
  routes: [{channels: [hook], events: ["*"]}]
"""


def run(with_outbox: bool, count: int) -> float:
    """Seconds for ``count`` releases; prints a line with the messages written."""
    directory = Path(tempfile.mkdtemp())
    db = Database(f"sqlite:///{directory / 'bench.db'}")
    upgrade(db)
    engine = Engine(db, clock=ManualClock(), settings=type(FAST)(**FAST.__dict__))
    if with_outbox:
        install(engine)
    pilot = Pilot(engine, directory)
    pilot.config(BASE + (NOTIFY if with_outbox else ""))
    driver = EngineDriver(engine, limit=100_000)
    start = time.perf_counter()
    for i in range(count):
        pilot.release(f"api@1.0.{i}")
        driver.run_until_idle()
    took = time.perf_counter() - start
    with db.read() as tx:
        messages = len(tx.outbox_log(limit=100_000))
    db.dispose()
    shutil.rmtree(directory)
    label = "with outbox" if with_outbox else "without"
    print(f"{label:>12}: {took / count * 1000:6.1f} ms a release ({messages} messages)")
    return took


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    for _ in range(2):
        run(False, count)
        run(True, count)


if __name__ == "__main__":
    main()
