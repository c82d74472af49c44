"""Wake-ups across processes: LISTEN on a dedicated PostgreSQL connection.

Every transaction that makes work ready (or asks for a cancellation) sends
``pg_notify('interlock', channel)`` as it commits (see ``Tx.before_commit``).
A :class:`Listener` holds one connection outside the pool, LISTENs, and hands
the channel names to a callback, so a worker in another process claims the
work at once instead of at its next poll.

Notifications are a hint, never the record: one sent while the connection
was down is lost, so after every (re)connection the listener reports every
channel once, and the workers' polling stays as the fallback.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from interlock.storage.db import Database, redact_url
from interlock.storage.handle import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# What a missed notification could have said: reported after every (re)connection.
CHANNELS = frozenset({"work", "cancel"})

# A dedicated connection must notice a dead peer in seconds, not after the
# kernel's default of about two hours (keepalives) or fifteen minutes
# (retransmissions); the server side is told the same, so it frees the
# session (and an advisory lock held by it) when this process's host vanishes.
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 15000,
    "connect_timeout": 5,
}
_SESSION = (
    "SET idle_session_timeout = 0",  # the connection idles by design
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


def process_name() -> str:
    """``host:pid``, the name this process gives its dedicated connections."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dedicated_connection(db: Database, role: str, name: str | None = None) -> psycopg.Connection:
    """A new autocommit connection outside the pool, named ``interlock ROLE host:pid``.

    The name shows in ``pg_stat_activity.application_name``, which is how an
    operator (or a test) sees which process listens or leads.
    """
    if db.dialect != "postgresql":
        raise ValueError("dedicated connections exist only on PostgreSQL")
    url = make_url(db.url).set(drivername="postgresql")
    conninfo = make_conninfo(
        url.render_as_string(hide_password=False),
        application_name=f"interlock {role} {name or process_name()}"[:63],
        **KEEPALIVE,
    )
    conn = psycopg.connect(conninfo, autocommit=True)
    try:
        for statement in _SESSION:
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


class Listener:
    """A daemon thread that LISTENs and calls ``callback(channels)`` for each notification.

    It reconnects with exponential backoff (``min_backoff`` doubling up to
    ``max_backoff``, with jitter) whenever the connection drops, and reports
    every channel after each connection because notifications sent while it
    was away are gone.
    """

    def __init__(
        self,
        db: Database,
        callback: Callable[[set[str]], None],
        *,
        name: str | None = None,
        channel: str = NOTIFY_CHANNEL,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        wait: float = 0.5,
    ) -> None:
        self.db = db
        self.callback = callback
        self.name = name
        self.channel = channel
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.wait = wait  # how often the thread looks at the stop flag
        self.connected = threading.Event()
        self.connections = 0  # how many times it connected (1 + reconnections)
        self.backend_pid: int | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="listen", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = self.min_backoff
        while not self._stopping.is_set():
            try:
                self._listen()
                delay = self.min_backoff  # a clean return means we are stopping
            except psycopg.Error as exc:
                self.connected.clear()
                self.backend_pid = None
                pause = delay * random.uniform(0.5, 1.0)
                log.warning(
                    "LISTEN connection to %s lost or refused (%s); reconnecting in %.1fs, "
                    "polling meanwhile",
                    redact_url(self.db.url),
                    _first_line(exc),
                    pause,
                )
                self._stopping.wait(pause)
                delay = min(delay * 2, self.max_backoff)
            except Exception:  # pragma: no cover - a bug here must not end the thread
                self.connected.clear()
                log.exception("the LISTEN thread failed; restarting it")
                self._stopping.wait(self.max_backoff)

    def _listen(self) -> None:
        with dedicated_connection(self.db, "listen", self.name) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            self.backend_pid = conn.info.backend_pid
            self.connections += 1
            if self.connections > 1:
                log.info("LISTEN connection restored")
            self.connected.set()
            self._deliver(set(CHANNELS))  # whatever was sent while nobody listened
            while not self._stopping.is_set():
                for notification in conn.notifies(timeout=self.wait):
                    self._deliver({notification.payload})
        self.connected.clear()

    def _deliver(self, channels: set[str]) -> None:
        try:
            self.callback(channels)
        except Exception:  # the listener outlives a failing callback
            log.exception("wake-up callback failed")


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
