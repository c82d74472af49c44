"""The engine driven to idle in the test thread: no worker or scheduler threads, no polling.

What a worker thread does (claim a ready node, prepare it, execute it, record the
result) and what the scheduler's tick does (timers, leases, queues) run here one
after the other, in the calling thread, until nothing is left to do: procrastinate's
``run_worker(wait=False)``. With a :class:`ManualClock`, :meth:`EngineDriver.advance`
moves time and runs what became due, so a timer's test neither sleeps nor waits.
"""

from __future__ import annotations

from typing import Any

from interlock.engine.clock import ManualClock
from interlock.engine.core import Engine
from interlock.engine.scheduler import TASKS
from interlock.engine.steps import claim, complete, execute, prepare

WORKER = "host:1:driver"


class EngineDriver:
    """Runs ``engine``'s work to idle when asked, in the caller's thread."""

    def __init__(self, engine: Engine, *, limit: int = 1000) -> None:
        self.engine = engine
        self.limit = limit  # nodes per run_until_idle: more is a loop, not a release
        self.ran: list[str] = []  # the key of every node run, in order

    def tick(self) -> None:
        """The scheduler's tasks once (they raise here, where the scheduler logs)."""
        for task in TASKS:
            task(self.engine)

    def run_one(self) -> bool:
        """Claim, run and record one ready node; False when none is ready."""
        engine = self.engine
        claimed: Any = engine.db.run(lambda tx: claim(tx, engine, WORKER))
        if claimed is None:
            return False
        job = prepare(engine, *claimed)
        result = execute(engine, job)
        engine.db.run(lambda tx: complete(tx, engine, job, result))
        self.ran.append(job.node.key)
        return True

    def run_until_idle(self) -> int:
        """Tick and run nodes until a tick leaves nothing ready; the number of nodes run."""
        count = 0
        while True:
            self.tick()
            ran = 0
            while self.run_one():
                ran += 1
                if count + ran > self.limit:
                    raise AssertionError(f"more than {self.limit} nodes ran: {self.ran[-10:]}")
            count += ran
            if not ran:
                return count

    def advance(self, seconds: float) -> int:
        """Move the manual clock ``seconds`` on, then run to idle."""
        clock = self.engine.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs an engine with a ManualClock")
        clock.advance(seconds)
        return self.run_until_idle()


def drive_release(engine: Engine, release_id: int) -> Any:
    """Run ``engine`` to idle in the test thread; the release, which must have ended."""
    EngineDriver(engine).run_until_idle()
    with engine.db.read() as tx:
        release = tx.get_release(release_id)
    assert release is not None and release.finished_at is not None, release
    return release
