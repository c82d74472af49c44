"""The moving parts of one process: workers, heartbeat and scheduler, started and stopped."""

from __future__ import annotations

import logging

from interlock.engine.core import Engine
from interlock.engine.recovery import recover
from interlock.engine.scheduler import Scheduler
from interlock.engine.worker import WorkerPool

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self, engine: Engine, *, workers: int = 4, scheduler: bool = True, name: str = "worker"
    ) -> None:
        self.engine = engine
        self.pool = WorkerPool(engine, workers, name) if workers > 0 else None
        self.scheduler = Scheduler(engine) if scheduler else None

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
        if self.pool is not None:
            self.pool.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self, drain: float = 10.0) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.pool is not None:
            self.pool.stop(drain)
