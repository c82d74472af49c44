"""The scheduler: timers kept in the database, fired on time even after a restart.

On each tick it recovers expired leases, starts scheduled releases whose
time has come and, when one is due, publishes an audit checkpoint outside the
database (``engine/checkpoints.py``). Gates keep their own timers as ``not_before`` on their nodes,
which workers claim when due.

On PostgreSQL every server and worker runs a scheduler, but only the one
that holds the election (``storage/leader.py``) runs the tasks; the others
ask again each tick, so one takes over within a tick or two of the
leader's death. On SQLite there is one process, so it always leads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from interlock.engine.checkpoints import publish_when_due
from interlock.engine.core import Engine
from interlock.engine.events.dispatcher import deliver_webhooks
from interlock.engine.progress import abort, start_queued
from interlock.engine.recovery import recover
from interlock.engine.releases import start_scheduled
from interlock.storage.tx import Tx

if TYPE_CHECKING:
    from interlock.storage.leader import Leadership

log = logging.getLogger(__name__)

Task = Callable[[Engine], None]

# Scheduled releases started per tick at most; the rest start on the next ticks.
SCHEDULED_BATCH = 100


def _scheduled_releases(engine: Engine) -> None:
    with engine.db.read() as tx:
        due = tx.due_scheduled_releases(engine.clock.now(), limit=SCHEDULED_BATCH)
    for release_id in due:
        start_scheduled(engine, release_id)


def _leases(engine: Engine) -> None:
    recover(engine)


def _deadlines(engine: Engine) -> None:
    """Scheduler task: abort deployments that outran their environment's ``deadline``.

    The clock starts with the first deploy step: time spent waiting for
    approvals or a deploy window does not count.
    """
    now = engine.clock.now()
    late: list[tuple[int, float]] = []  # (deployment, its deadline in seconds)
    with engine.db.read() as tx:
        for deployment in tx.running_with_deadline():
            started = tx.first_step_started(deployment.id)
            limit = deployment.rules.deadline
            if (
                started is not None
                and limit is not None
                and started + timedelta(seconds=limit) <= now
            ):
                late.append((deployment.id, limit))
    for deployment_id, limit in late:

        def work(tx: Tx, deployment_id: int = deployment_id, limit: float = limit) -> None:
            current = tx.get_deployment(deployment_id, lock=True)
            if current is not None and current.finished_at is None:
                abort(
                    tx,
                    current,
                    at=now,
                    reason=f"its deadline of {limit:g}s passed before it finished",
                )

        engine.db.run(work)


def _queues(engine: Engine) -> None:
    """A safety net: start queued deployments that nothing else woke (a lost race)."""
    with engine.db.read() as tx:
        environments = tx.environments_with_queue()
    for environment in environments:

        def work(tx: Tx, environment: str = environment) -> None:
            start_queued(tx, environment, at=engine.clock.now())

        engine.db.run(work)


def _audit_checkpoints(engine: Engine) -> None:
    publish_when_due(engine)


TASKS: list[Task] = [
    _leases,
    _scheduled_releases,
    _deadlines,
    _queues,
    deliver_webhooks,
    _audit_checkpoints,
]


class Scheduler:
    """Runs every task once per tick in one thread, while it leads."""

    def __init__(
        self,
        engine: Engine,
        tasks: list[Task] | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.engine = engine
        self.tasks = list(tasks if tasks is not None else TASKS)
        self.leadership = leadership  # None: the only scheduler (SQLite), always leads
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        for task in self.tasks:
            try:
                task(self.engine)
            except Exception:
                log.exception("scheduler task %s failed", task.__name__)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def leads(self) -> bool:
        """Whether this process runs the tasks now (asks the election on PostgreSQL)."""
        return self.leadership is None or self.leadership.check()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self.leads():
                self.run_once()
            self._stopping.wait(self.engine.settings.tick)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.leadership is not None:
            self.leadership.release()
