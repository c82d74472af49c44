"""A valid audit chain of many events, written fast (bench/audit.py and the verify tests).

Bodies and hashes come from the project's own audit/chain.py (``event_body``
and ``link``), written by direct inserts in large transactions, the head
record set to the last event. The log must be empty before.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, update

from interlock.audit.chain import GENESIS, event_body, link
from interlock.storage.schema import audit_events, audit_head

ACTIONS = ["step.started", "step.succeeded", "release.created", "approval.given"]


def build(engine: Engine, events: int, batch: int = 20_000) -> None:
    """Write a valid chain of ``events`` events and move the head onto its end."""
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    prev = GENESIS
    for first in range(1, events + 1, batch):
        rows = []
        for seq in range(first, min(first + batch, events + 1)):
            at = datetime.fromtimestamp(start + seq * 0.01, UTC)
            action = ACTIONS[seq % len(ACTIONS)]
            object_id = str(seq // 7)
            body = event_body(
                seq=seq,
                at=at,
                actor="system",
                action=action,
                object_type="step",
                object_id=object_id,
                data={"attempt": 1},
            )
            digest = link(prev, body)
            rows.append(
                {
                    "seq": seq,
                    "at": at,
                    "actor": "system",
                    "action": action,
                    "object_type": "step",
                    "object_id": object_id,
                    "body": body,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        with engine.begin() as conn:
            conn.execute(audit_events.insert(), rows)
    with engine.begin() as conn:
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=events, hash=prev))
