"""Notifications to people: the outbox, approval links, reminder timers, replay guard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from interlock.storage.base import Prepared, QueryBase
from interlock.storage.schema import (
    approval_links,
    gate_escalations,
    notify_keys,
    notify_outbox,
    notify_timers,
    slack_replays,
)

_ESCALATIONS_OF_RUN = Prepared(  # read by every approval of a gate
    select(gate_escalations.c.kind, gate_escalations.c.group_name)
    .where(gate_escalations.c.node_id == bindparam("node_id"))
    .order_by(gate_escalations.c.id)
)


@dataclass(frozen=True)
class OutboxEntry:
    """One message for one channel (and recipient), and how its delivery went."""

    id: int
    channel: str
    event: str
    recipient: str | None
    subject: str
    payload: dict[str, Any]
    created_at: datetime
    state: str
    attempts: int
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ApprovalLink:
    """A signed, single-use approve/reject link of one approver for one gate."""

    id: str
    release_id: int
    environment: str
    gate: str
    approver: str
    content_hash: str
    gate_digest: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_decision: str | None


@dataclass(frozen=True)
class NotifyTimer:
    """A reminder or escalation of a waiting gate."""

    id: int
    kind: str
    node_id: int
    due_at: datetime
    fired: int
    done: bool


class NotificationQueries(QueryBase):
    # -- outbox ---------------------------------------------------------------
    def add_outbox(self, rows: list[dict[str, Any]]) -> None:
        """Queue messages (in this transaction: they exist only if it commits)."""
        if rows:
            self.conn.execute(
                notify_outbox.insert(), [{**r, "state": "pending", "attempts": 0} for r in rows]
            )

    def outbox_head(self, channel: str) -> OutboxEntry | None:
        """The oldest message of ``channel`` not delivered yet (order is kept per channel)."""
        row = self.conn.execute(
            select(notify_outbox)
            .where(notify_outbox.c.channel == channel, notify_outbox.c.state == "pending")
            .order_by(notify_outbox.c.id)
            .limit(1)
        ).first()
        return OutboxEntry(**row._mapping) if row else None

    def claim_outbox(self, entry: OutboxEntry, now: datetime, until: datetime) -> bool:
        """Hold ``entry`` for sending until ``until``; False if another sender holds it."""
        result = self.conn.execute(
            update(notify_outbox)
            .where(
                notify_outbox.c.id == entry.id,
                notify_outbox.c.state == "pending",
                or_(notify_outbox.c.claimed_until.is_(None), notify_outbox.c.claimed_until < now),
            )
            .values(claimed_until=until)
        )
        return bool(result.rowcount)

    def outbox_delivered(
        self, entry_id: int, at: datetime, payload: dict[str, Any] | None = None
    ) -> None:
        """Mark a message delivered (``payload``: what to keep of it, e.g. without links)."""
        values: dict[str, Any] = {
            "state": "delivered",
            "delivered_at": at,
            "attempts": notify_outbox.c.attempts + 1,
            "claimed_until": None,
            "next_attempt_at": None,
        }
        if payload is not None:
            values["payload"] = payload
        self.conn.execute(
            update(notify_outbox).where(notify_outbox.c.id == entry_id).values(**values)
        )

    def outbox_failed(self, entry_id: int, error: str, retry_at: datetime) -> None:
        self.conn.execute(
            update(notify_outbox)
            .where(notify_outbox.c.id == entry_id)
            .values(
                last_error=error,
                attempts=notify_outbox.c.attempts + 1,
                claimed_until=None,
                next_attempt_at=retry_at,
            )
        )

    def outbox_log(
        self, channel: str | None = None, *, limit: int = 50, state: str | None = None
    ) -> list[OutboxEntry]:
        """The newest messages first (of one channel, or all)."""
        query = select(notify_outbox).order_by(notify_outbox.c.id.desc()).limit(limit)
        if channel is not None:
            query = query.where(notify_outbox.c.channel == channel)
        if state is not None:
            query = query.where(notify_outbox.c.state == state)
        return [OutboxEntry(**r._mapping) for r in self.conn.execute(query)]

    def outbox_pending_counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(notify_outbox.c.channel, func.count())
            .where(notify_outbox.c.state == "pending")
            .group_by(notify_outbox.c.channel)
        )
        return {str(r[0]): int(r[1]) for r in rows}

    # -- approval links -------------------------------------------------------
    def add_approval_link(self, **values: Any) -> None:
        self.conn.execute(approval_links.insert().values(**values))

    def get_approval_link(self, link_id: str) -> ApprovalLink | None:
        row = self.conn.execute(
            select(approval_links).where(approval_links.c.id == link_id)
        ).first()
        return ApprovalLink(**row._mapping) if row else None

    def use_approval_link(self, link_id: str, decision: str, at: datetime) -> bool:
        """Mark the link used (once): False when it was used already."""
        result = self.conn.execute(
            update(approval_links)
            .where(approval_links.c.id == link_id, approval_links.c.used_at.is_(None))
            .values(used_at=at, used_decision=decision)
        )
        return bool(result.rowcount)

    # -- timers ---------------------------------------------------------------
    def add_notify_timer(self, kind: str, node_id: int, due_at: datetime) -> None:
        """Start a timer of ``kind`` for a gate (nothing if it has one already)."""
        self.conn.execute(
            self._insert_if_new(
                notify_timers,
                {"kind": kind, "node_id": node_id, "due_at": due_at, "fired": 0, "done": False},
                None,
            )
        )

    def due_notify_timers(self, now: datetime, limit: int = 100) -> list[NotifyTimer]:
        rows = self.conn.execute(
            select(notify_timers)
            .where(notify_timers.c.done.is_(False), notify_timers.c.due_at <= now)
            .order_by(notify_timers.c.due_at, notify_timers.c.id)
            .limit(limit)
        )
        return [NotifyTimer(**r._mapping) for r in rows]

    def notify_timers_of(self, node_id: int) -> list[NotifyTimer]:
        rows = self.conn.execute(
            select(notify_timers)
            .where(notify_timers.c.node_id == node_id)
            .order_by(notify_timers.c.id)
        )
        return [NotifyTimer(**r._mapping) for r in rows]

    def fire_notify_timer(self, timer: NotifyTimer, *, next_due: datetime | None) -> bool:
        """Move a due timer on (or end it) if no one else did: whether this caller fired it."""
        values: dict[str, Any] = {"fired": timer.fired + 1}
        if next_due is None:
            values["done"] = True
        else:
            values["due_at"] = next_due
        result = self.conn.execute(
            update(notify_timers)
            .where(
                and_(
                    notify_timers.c.id == timer.id,
                    notify_timers.c.fired == timer.fired,
                    notify_timers.c.done.is_(False),
                )
            )
            .values(**values)
        )
        return bool(result.rowcount)

    def restart_notify_timer(self, timer_id: int, due_at: datetime) -> None:
        self.conn.execute(
            update(notify_timers)
            .where(notify_timers.c.id == timer_id)
            .values(done=False, due_at=due_at)
        )

    def end_notify_timer(self, timer_id: int) -> None:
        self.conn.execute(
            update(notify_timers).where(notify_timers.c.id == timer_id).values(done=True)
        )

    # -- escalations ----------------------------------------------------------
    def add_gate_escalation(self, node_id: int, kind: str, group: str, at: datetime) -> bool:
        """Let ``kind`` ``group`` approve the gate ``node_id`` too: False if it could already."""
        inserted = self._insert_if_new(
            gate_escalations,
            {"node_id": node_id, "kind": kind, "group_name": group, "at": at},
            None,
        ).returning(gate_escalations.c.id)
        return self.conn.execute(inserted).first() is not None

    def gate_escalations_of(self, node_id: int) -> list[tuple[str, str]]:
        """The (kind, group) a gate was escalated to, oldest first."""
        rows = _ESCALATIONS_OF_RUN.run(self.conn, {"node_id": node_id}).rows
        return [(str(r[0]), str(r[1])) for r in rows]

    # -- keys and replays -----------------------------------------------------
    def notify_key(self, name: str, make: str) -> str:
        """The stored key ``name``, stored as ``make`` first if there is none (a read
        when it exists: links are checked in read-only transactions)."""
        query = select(notify_keys.c.value).where(notify_keys.c.name == name)
        value = self.conn.execute(query).scalar()
        if value is None:
            self.conn.execute(
                self._insert_if_new(notify_keys, {"name": name, "value": make}, "name")
            )
            value = self.conn.execute(query).scalar()
        return str(value)

    def first_slack_request(self, signature: str, at: datetime, forget_before: datetime) -> bool:
        """Record a Slack request's signature: False when it was seen already (a replay)."""
        self.conn.execute(delete(slack_replays).where(slack_replays.c.at < forget_before))
        inserted = self._insert_if_new(
            slack_replays, {"signature": signature, "at": at}, "signature"
        ).returning(slack_replays.c.signature)
        return self.conn.execute(inserted).first() is not None

    def _insert_if_new(self, table: Table, values: dict[str, Any], key: str | None) -> Any:
        """``INSERT`` that does nothing when it clashes with the ``key`` (or any unique index)."""
        dialect: Any = postgresql if self.dialect == "postgresql" else sqlite
        return (
            dialect.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[key] if key else None)
        )
