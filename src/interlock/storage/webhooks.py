"""Events in and out: webhook delivery cursors, inbound receipts, artifact look-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from interlock.domain.records import Artifact
from interlock.storage.base import QueryBase
from interlock.storage.schema import (
    artifacts,
    audit_events,
    config_versions,
    event_receipts,
    webhook_cursors,
)


@dataclass(frozen=True)
class WebhookCursor:
    """How far one webhook has been delivered, and how its last tries went."""

    name: str
    delivered_seq: int
    started_seq: int
    created_at: datetime
    updated_at: datetime
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class EventReceipt:
    """An inbound event that was acted on (or deliberately not)."""

    key: str
    source: str
    event_id: str
    type: str
    subject_key: str | None
    received_at: datetime
    received_by: str
    outcome: str
    detail: str | None
    incident_id: int | None
    body_digest: str | None = None


class WebhookQueries(QueryBase):
    # -- outbound: the audit log is the outbox ------------------------------------
    def webhook_cursors(self) -> dict[str, WebhookCursor]:
        """Every stored cursor, by webhook name."""
        rows = self.conn.execute(select(webhook_cursors))
        return {r.name: WebhookCursor(**r._mapping) for r in rows}

    def webhook_cursor(self, name: str) -> WebhookCursor | None:
        row = self.conn.execute(
            select(webhook_cursors).where(webhook_cursors.c.name == name)
        ).first()
        return WebhookCursor(**row._mapping) if row else None

    def config_loaded_seq(self) -> int:
        """The audit sequence number at which the newest config was loaded (0 if none).

        A new webhook starts after it: it receives what happened since the
        configuration that added it, not the whole history.
        """
        version = self.conn.execute(select(func.max(config_versions.c.version))).scalar()
        if version is None:
            return 0
        seq = self.conn.execute(
            select(func.max(audit_events.c.seq)).where(
                audit_events.c.object_type == "config",
                audit_events.c.object_id == str(version),
                audit_events.c.action == "config.loaded",
            )
        ).scalar()
        return int(seq or 0)

    def ensure_webhook_cursor(self, name: str, start: int, at: datetime) -> WebhookCursor:
        """The cursor of ``name``, created at ``start`` if it has none (races are fine)."""
        found = self.webhook_cursor(name)
        if found is not None:
            return found
        values = {
            "name": name,
            "delivered_seq": start,
            "started_seq": start,
            "created_at": at,
            "updated_at": at,
            "failures": 0,
        }
        # Two schedulers (a leader change) may both create it: the first one wins.
        self.conn.execute(self._insert_new(webhook_cursors, values, "name"))
        created = self.webhook_cursor(name)
        assert created is not None
        return created

    def skip_webhook_events(self, name: str, *, expected: int, through: int, at: datetime) -> bool:
        """Move the cursor from ``expected`` to ``through`` (an operator skipping events).

        Failures and backoff are cleared, so the next round starts at once. False
        when the cursor is no longer at ``expected`` (a round moved it meanwhile).
        """
        result = self.conn.execute(
            update(webhook_cursors)
            .where(webhook_cursors.c.name == name, webhook_cursors.c.delivered_seq == expected)
            .values(delivered_seq=through, failures=0, next_attempt_at=None, updated_at=at)
        )
        return bool(result.rowcount)

    def retry_webhook_now(self, name: str, at: datetime) -> None:
        """Forget the backoff: the next scheduler tick starts a round."""
        self.conn.execute(
            update(webhook_cursors)
            .where(webhook_cursors.c.name == name)
            .values(next_attempt_at=None, updated_at=at)
        )

    def record_webhook_round(
        self,
        name: str,
        *,
        delivered_seq: int,
        at: datetime,
        succeeded: bool,
        error: str | None,
        failures: int,
        next_attempt_at: datetime | None,
    ) -> None:
        """Store a delivery round's outcome; the cursor never moves backwards.

        When the stored cursor is already past where the round got (an operator
        skipped ahead meanwhile), the round's failures and backoff are stale and
        are not stored.
        """
        values: dict[str, object] = {
            "updated_at": at,
            "failures": failures,
            "next_attempt_at": next_attempt_at,
        }
        if succeeded:
            values["last_success_at"] = at
        if error is not None:
            values["last_error"] = error[:2000]
            values["last_error_at"] = at
        self.conn.execute(
            update(webhook_cursors)
            .where(webhook_cursors.c.name == name, webhook_cursors.c.delivered_seq <= delivered_seq)
            .values(**values)
        )
        self.conn.execute(
            update(webhook_cursors)
            .where(webhook_cursors.c.name == name, webhook_cursors.c.delivered_seq < delivered_seq)
            .values(delivered_seq=delivered_seq)
        )

    # -- inbound: receipts ------------------------------------------------------------
    def event_receipt(
        self, key: str, *, source: str | None = None, body_digest: str | None = None
    ) -> EventReceipt | None:
        """The receipt of ``key``, or of the same signed body from ``source``."""
        match = event_receipts.c.key == key
        if body_digest is not None:
            same_body = and_(
                event_receipts.c.source == source, event_receipts.c.body_digest == body_digest
            )
            match = or_(match, same_body)
        row = self.conn.execute(select(event_receipts).where(match)).first()
        return EventReceipt(**row._mapping) if row else None

    def claim_event_receipt(
        self,
        *,
        key: str,
        source: str,
        event_id: str,
        type: str,
        subject_key: str | None,
        at: datetime,
        by: str,
        body_digest: str | None = None,
    ) -> bool:
        """Record that an event is being acted on; ``False`` if it already was.

        Already acted on: the same ``key``, or the same ``body_digest`` (the
        sha256 of the signed body) from the same source. On PostgreSQL a
        concurrent claim of either waits for the first transaction and then
        finds the row: a duplicate, never an error.
        """
        values = {
            "key": key,
            "source": source,
            "event_id": event_id,
            "type": type[:128],
            "subject_key": subject_key,
            "received_at": at,
            "received_by": by,
            "outcome": "pending",
            "body_digest": body_digest,
        }
        # RETURNING rather than rowcount: psycopg reports no reliable count for DO NOTHING.
        # No conflict target: a clash on either unique index is a duplicate.
        inserted = self.conn.execute(
            self._insert_new(event_receipts, values, None).returning(event_receipts.c.key)
        ).first()
        return inserted is not None

    def settle_event_receipt(
        self, key: str, *, outcome: str, detail: str | None, incident_id: int | None
    ) -> None:
        """What acting on a claimed event did."""
        self.conn.execute(
            update(event_receipts)
            .where(event_receipts.c.key == key)
            .values(outcome=outcome, detail=detail, incident_id=incident_id)
        )

    def incidents_of_subject(self, subject_key: str) -> list[int]:
        """Incidents opened by events about this subject, newest first."""
        rows = self.conn.execute(
            select(event_receipts.c.incident_id)
            .where(
                event_receipts.c.subject_key == subject_key,
                event_receipts.c.incident_id.is_not(None),
            )
            .order_by(event_receipts.c.received_at.desc())
        )
        return [int(r.incident_id) for r in rows]

    # -- artifacts other tools refer to ---------------------------------------------
    def artifact_with_digest(self, service: str, digest: str) -> Artifact | None:
        return self._newest_artifact(service, artifacts.c.digest == digest)

    def artifact_with_commit(self, service: str, commit: str) -> Artifact | None:
        return self._newest_artifact(service, artifacts.c.commit_sha == commit)

    def _newest_artifact(self, service: str, condition: ColumnElement[bool]) -> Artifact | None:
        row = self.conn.execute(
            select(artifacts)
            .where(artifacts.c.service == service, condition)
            .order_by(artifacts.c.id.desc())
        ).first()
        return Artifact(**row._mapping) if row else None

    def _insert_new(self, table: Table, values: dict[str, Any], key: str | None) -> Any:
        """``INSERT`` of ``values`` that does nothing when a row with its ``key`` exists
        (``None``: when it clashes with any unique index)."""
        dialect: Any = postgresql if self.dialect == "postgresql" else sqlite
        elements = [key] if key else None
        return (
            dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=elements)
        )
