"""What a transaction needs of the database that opened it.

:class:`~interlock.storage.db.Database` hands out transactions
(:class:`~interlock.storage.tx.Tx`), and a transaction reads a little of its
database back: its dialect and the audit chain head this process last wrote.
This module names that much, so the arrow goes one way: ``db`` imports
``tx``, and ``tx`` (with every query module) imports only this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# The PostgreSQL LISTEN/NOTIFY channel on which commits wake the workers.
NOTIFY_CHANNEL = "interlock"


class DatabaseHandle(Protocol):
    """The part of a database a transaction reads and updates."""

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        ...

    # (seq, hash) of the audit chain's head as this process last wrote it
    audit_head_seen: tuple[int, str] | None
    # transactions left before guessing the head again, after a miss
    audit_head_pause: int
    # called in every write transaction with the audit events it is about to write
    # (the notification outbox is written there: same transaction as the events)
    audit_hooks: list[Callable[[Any, list[dict[str, Any]]], None]]
    # called in every write transaction that made nodes ready, before its audit events
    # are written: an idle worker of this process claims them there (engine/worker.py)
    ready_hooks: list[Callable[[Any], None]]
