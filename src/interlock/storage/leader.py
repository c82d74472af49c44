"""The scheduler election: a session advisory lock on a dedicated PostgreSQL connection.

Every server and worker that runs a scheduler asks, once per tick, for
``pg_try_advisory_lock(ELECTION_KEY)`` on a connection of its own. The one
that gets it leads until that connection ends: when its process dies the
server drops the session and the lock with it, and another process takes
it at its next tick. The holder checks every tick that its session is alive
and still holds the lock; when it is not, it stops leading at once.

The election keeps the timers from running in every process at once; it is
not what makes them correct. Every scheduler task locks the rows it changes
and checks their state (``FOR UPDATE SKIP LOCKED``, guarded updates), so the
short overlap a network partition can cause (an old leader finishing its
tick while a new one starts) costs some wasted work and nothing else.
"""

from __future__ import annotations

import logging

import psycopg

from interlock.storage.db import Database, redact_url
from interlock.storage.listen import dedicated_connection

log = logging.getLogger(__name__)

# Advisory lock keys are per database. 727001 serialises migrations
# (storage/migrate.py); 727002 is the scheduler's; 727003 serialises config
# loads (storage/configs.py), 727004 an environment's queue
# (storage/deployments.py), 727005 changes to the delivery facts
# (storage/facts/delivery.py), 727006 changes that may remove the last
# administrator (storage/identity.py) and 727007 orders queuing a deployment
# against ending one in an environment (storage/deployments.py).
ELECTION_KEY = 727002

_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
    "AND pid = pg_backend_pid() AND granted AND classid = %s AND objid = %s AND objsubid = 1)"
)
_HOLDER = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
    "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database())"
)


def _split(key: int) -> tuple[int, int]:
    # pg_locks shows a bigint key as two 32-bit halves (objsubid 1).
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


class Leadership:
    """This process's seat in the election; :meth:`check` once per tick.

    Not thread-safe: the scheduler thread owns it.
    """

    def __init__(self, db: Database, *, name: str | None = None, key: int = ELECTION_KEY) -> None:
        self.db = db
        self.name = name
        self.key = key
        self._conn: psycopg.Connection | None = None
        self._leading = False

    @property
    def leading(self) -> bool:
        """Whether the last :meth:`check` found this process leading."""
        return self._leading

    def check(self) -> bool:
        """Whether this process leads now; become the leader if nobody is."""
        if self._leading:
            if self._still_held():
                return True
            log.warning(
                "scheduler leadership lost (the election connection ended); "
                "another process takes over"
            )
            self._leading = False
            self._drop()
        try:
            if self._conn is None:
                self._conn = dedicated_connection(self.db, "scheduler", self.name)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as exc:
            log.warning(
                "cannot take part in the scheduler election on %s (%s); retrying next tick",
                redact_url(self.db.url),
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            self._drop()
            return False
        self._leading = bool(row and row[0])
        if self._leading:
            log.info("this process now runs the scheduler (advisory lock %d)", self.key)
        return self._leading

    def _still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            row = self._conn.execute(_HOLDS, _split(self.key)).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def release(self) -> None:
        """Step down (a clean stop): another process can lead at its next tick."""
        if self._conn is not None and self._leading:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except psycopg.Error:
                pass  # closing the connection frees it too
        self._leading = False
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                pass
            self._conn = None


def current_leader(db: Database, key: int = ELECTION_KEY) -> str | None:
    """The ``application_name`` of the connection that leads (``interlock scheduler HOST:PID``)."""
    with dedicated_connection(db, "probe") as conn:
        row = conn.execute(_HOLDER, _split(key)).fetchone()
    return str(row[0]) if row else None
