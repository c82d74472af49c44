"""The engine handle: the database, the clock, the settings and the wake-up signal."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from interlock.engine.clock import Clock, SystemClock
from interlock.engine.configs import Configs
from interlock.engine.environ import KnownSecrets, own_secret_values
from interlock.engine.wakeup import Notifier
from interlock.executors.base import DEFAULT_LOG_LIMIT
from interlock.storage.db import Database

SYSTEM_ACTOR = "interlock"


@dataclass
class Settings:
    """Knobs of the engine; the defaults suit a server on one machine."""

    lease_ttl: float = 30.0  # a dead worker's steps are recovered after this long
    tick: float = 1.0  # heartbeats, log flushes and the scheduler run this often
    poll_interval: float = 2.0  # fallback when no wake-up arrives
    log_limit: int = DEFAULT_LOG_LIMIT
    kill_grace: float = 5.0  # SIGTERM → SIGKILL on timeout or cancel
    lost_lease_retries: int = 3  # extra runs an idempotent step gets after worker deaths
    # Where the audit chain's head is published outside the database (None: nowhere),
    # and how often (seconds) the scheduler's leader publishes it.
    audit_checkpoints: Path | None = None
    audit_checkpoint_every: float = 3600.0
    # Environment variables a step never inherits from the server or worker.
    withheld_env: tuple[str, ...] = field(
        default=(
            "INTERLOCK_TOKEN",
            "INTERLOCK_DATABASE_URL",
            "INTERLOCK_ADMIN_TOKEN",
            "INTERLOCK_HOME",  # it holds admin.token
        )
    )


class Engine:
    """Shared by the API, the workers and the scheduler of one process."""

    def __init__(
        self, db: Database, *, clock: Clock | None = None, settings: Settings | None = None
    ) -> None:
        self.db = db
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.notifier = Notifier()
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        # Values masked in step output and the server's log; configs add theirs when parsed.
        self.secrets = KnownSecrets()
        self.secrets.learn(own_secret_values(os.environ, db.url))
        # The configs stored in ``db``: the API, the workers and the scheduler read the active one.
        self.configs = Configs(db, self.clock, self.secrets)
        db.on_commit(self.notifier.on_commit)
