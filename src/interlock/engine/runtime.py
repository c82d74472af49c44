"""The moving parts of one process: workers, heartbeat and scheduler, started and stopped.

On PostgreSQL a process also holds two connections of its own: one LISTENs,
so a commit in another process wakes this one's workers (and stops a step
cancelled elsewhere) at once; the other takes part in the scheduler
election, so exactly one process runs the timers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from interlock.engine.core import Engine
from interlock.engine.recovery import recover
from interlock.engine.scheduler import Scheduler
from interlock.engine.worker import WorkerPool

if TYPE_CHECKING:
    from interlock.storage.listen import Listener

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        engine: Engine,
        *,
        workers: int = 4,
        scheduler: bool = True,
        name: str = "worker",
        listen: bool = True,
    ) -> None:
        self.engine = engine
        postgres = engine.db.dialect == "postgresql"
        self.pool = WorkerPool(engine, workers, name) if workers > 0 else None
        self.scheduler: Scheduler | None = None
        if scheduler:
            leadership = None
            if postgres:
                from interlock.storage.leader import Leadership

                leadership = Leadership(engine.db, name=engine.instance)
            self.scheduler = Scheduler(engine, leadership=leadership)
        # Only workers wait for wake-ups; a process without them need not listen.
        self.listener: Listener | None = None
        if listen and postgres and self.pool is not None:
            from interlock.storage.listen import Listener

            self.listener = Listener(engine.db, self._remote_commit, name=engine.instance)

    def _remote_commit(self, channels: set[str]) -> None:
        """A commit in another process notified ``channels``: react as to a local one."""
        self.engine.notifier.on_commit(channels)
        if self.pool is not None:
            self.pool._on_commit(channels)

    def start(self, *, recover_all: bool = False) -> None:
        """Start; ``recover_all`` hands back every running step (a SQLite server restarting)."""
        if recover_all:
            recovered = recover(
                self.engine,
                everything=True,
                reason="the server stopped while it ran (found at start-up)",
            )
            for key, target in recovered:
                log.warning("recovered %s after a restart: now %s", key, target)
        if self.listener is not None:
            self.listener.start()  # before the workers, so no wake-up falls in between
        if self.pool is not None:
            self.pool.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self, drain: float = 10.0) -> None:
        """Stop; running steps get ``drain`` seconds to finish, then are stopped and recovered."""
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.pool is not None:
            self.pool.stop(drain)
        if self.listener is not None:
            self.listener.stop()

    def begin_stop(self) -> None:
        """Stop claiming steps now (from a signal handler); :meth:`stop` drains and stops."""
        if self.pool is not None:
            self.pool.begin_stop()

    def hurry(self) -> None:
        """Cut the drain of :meth:`stop` short (a second SIGTERM or Ctrl-C)."""
        if self.pool is not None:
            self.pool.hurry()
