"""Audit events: buffered during a transaction, chained and written just before commit."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, text, update

from interlock.audit.chain import Checkpoint, EventRow, StoredEvent, event_body, link
from interlock.domain.records import AuditEvent
from interlock.storage.base import Prepared, QueryBase
from interlock.storage.changes import JsonValue
from interlock.storage.schema import audit_events, audit_head
from interlock.storage.types import Timestamp

_TS = Timestamp()
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
)
# A window of sequence numbers a batch, not a LIMIT: whatever plan the database picks,
# a batch reads its window's events only (PostgreSQL, its statistics taken when the log
# was smaller, read every event to the end of the log and sorted them, for each batch).
_STORED_COLUMNS = (
    "seq, at, actor, action, object_type, object_id, body, prev_hash, hash"
    " FROM audit_events WHERE seq > {} AND seq <= {} ORDER BY seq"
)
_STORED_ROWS_SQLITE = "SELECT " + _STORED_COLUMNS.format("?", "?")
_STORED_ROWS_PG = "SELECT " + _STORED_COLUMNS.format("%s", "%s")
# After the remembered head turned out stale, this many transactions read it instead.
AUDIT_GUESS_PAUSE = 16
# Moves the head only if it is still where this process last left it.
_MOVE_HEAD_FROM = _MOVE_HEAD.where(
    audit_head.c.seq == bindparam("w_seq"), audit_head.c.hash == bindparam("w_hash")
)

# What every commit runs (see base.Prepared).
_MOVE_HEAD_FROM_RUN = Prepared(_MOVE_HEAD_FROM)
_INSERT_EVENTS = Prepared(
    audit_events.insert().values(
        {
            c.name: bindparam(c.name, type_=Timestamp() if c.name == "at" else c.type)
            for c in audit_events.c
        }
    )
)


# PostgreSQL: the head locked, the events chained onto it, the head moved and the
# events inserted, in one statement, sent with the COMMIT behind it (one round trip
# holds the head's lock). Each event comes as its canonical body cut around its sequence
# number (``head`` + seq + ``tail``): the number is known only once the head is
# locked, so the body and its hash, sha256(prev_hash + newline + body) as
# interlock.audit.chain.link computes it, are finished here. Every pending event is
# a row of the INSERT (the LEFT JOIN): with no head to chain onto, its seq is NULL and
# the statement fails, so the COMMIT behind it never commits a change without its events.
_APPEND_PG = Prepared(
    text(
        """
WITH RECURSIVE
locked AS (SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE),
pending AS (
    SELECT * FROM unnest(
        CAST(:heads AS text[]), CAST(:tails AS text[]), CAST(:ats AS float8[]),
        CAST(:actors AS text[]), CAST(:actions AS text[]), CAST(:object_types AS text[]),
        CAST(:object_ids AS text[])
    ) WITH ORDINALITY AS e(head, tail, at, actor, action, object_type, object_id, n)
),
chained (n, seq, body, prev_hash, hash) AS (
    SELECT CAST(0 AS bigint), seq, CAST(NULL AS text), CAST(NULL AS text), CAST(hash AS text)
    FROM locked
    UNION ALL
    SELECT e.n, c.seq + 1, b.body, c.hash,
           encode(sha256(convert_to(c.hash || chr(10) || b.body, 'UTF8')), 'hex')
    FROM chained c
    JOIN pending e ON e.n = c.n + 1
    CROSS JOIN LATERAL (SELECT e.head || CAST(c.seq + 1 AS text) || e.tail AS body) b
),
tip AS (SELECT seq, hash FROM chained ORDER BY n DESC LIMIT 1),
moved AS (
    UPDATE audit_head SET seq = tip.seq, hash = tip.hash FROM tip
    WHERE audit_head.id = 1 RETURNING audit_head.seq
)
INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, body, prev_hash, hash)
SELECT c.seq, e.at, e.actor, e.action, e.object_type, e.object_id, c.body, c.prev_hash, c.hash
FROM pending e LEFT JOIN chained c ON c.n = e.n
RETURNING seq, hash
"""
    ).columns(audit_events.c.seq, audit_events.c.hash)
)
_SEQ_AT = '"seq":0,"ts":'  # where an event body numbered 0 holds its number (its last key but ts)


def cut_body(event: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical body of a buffered event, around its sequence number:
    ``head + str(seq) + tail == event_body(seq=seq, ...)`` for every ``seq``.

    The body's keys are sorted and ``seq`` is the last but ``ts`` (a number), so
    its last ``"seq":0,"ts":`` is the top-level one (``data`` and the others,
    where the same text could appear, all come before it).
    """
    body = event_body(seq=0, **event)
    cut = body.rindex(_SEQ_AT) + len('"seq":')
    return body[:cut], body[cut + 1 :]


class AuditQueries(QueryBase):
    def audit(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        object_type: str,
        object_id: str | int,
        reason: str | None = None,
        before: JsonValue = None,
        after: JsonValue = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        """Record an action; it is written in this transaction, as its last statement."""
        self._pending_audit.append(
            {
                "at": at,
                "actor": actor,
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id)[:255],
                "reason": reason,
                "before": before,
                "after": after,
                "data": data,
            }
        )

    def flush_audit(self, *, commit: bool = False) -> None:
        """Chain the buffered events onto the head and write them.

        On PostgreSQL, in one statement (:meth:`_append_in_one`); with ``commit``
        (the last thing :meth:`Tx.before_commit` does), the transaction's COMMIT
        goes out behind it, in the same round trip. On SQLite
        (one writer at a time), the head this process wrote last is remembered,
        so the usual case costs no read: the head is moved only if it is still
        there (a guarded update). If anything else moved it meanwhile (another
        process, a rolled-back commit), the update matches nothing and the head
        is read, as it always was. After such a miss the guess is left alone
        for a while: where several processes write, it would mostly miss and
        cost a statement.
        """
        if not self._pending_audit:
            return
        if self.for_update():
            self._append_in_one(commit)
            return
        db = self.db
        known = db.audit_head_seen if db.audit_head_pause == 0 else None
        db.audit_head_pause = max(0, db.audit_head_pause - 1)
        moved = False
        if known is not None:
            rows, seq, prev = self._chained(*known)
            params = {"b_seq": seq, "b_hash": prev, "w_seq": known[0], "w_hash": known[1]}
            moved = bool(_MOVE_HEAD_FROM_RUN.run(self.conn, params).rowcount)
            if not moved:
                db.audit_head_pause = AUDIT_GUESS_PAUSE
        if not moved:
            head = self.conn.execute(_HEAD).first()
            start = (int(head.seq), str(head.hash)) if head else (0, "0" * 64)
            rows, seq, prev = self._chained(*start)
            if head is None:
                self.conn.execute(audit_head.insert().values(id=1, seq=seq, hash=prev))
            else:
                self.conn.execute(_MOVE_HEAD, {"b_seq": seq, "b_hash": prev})
        _INSERT_EVENTS.run_many(self.conn, rows)
        db.audit_head_seen = (seq, prev)
        self._pending_audit = []

    def _append_in_one(self, commit: bool) -> None:
        """PostgreSQL: chain and write the buffered events in one statement.

        Its head's row lock is then held for that one statement and the commit:
        no read of the head, no hashing in Python. With ``commit`` the COMMIT
        goes out with it (:func:`run_together`): no round trip and no wait for
        this process to be scheduled again while other writers wait for the head
        (under load, about half of the waits on the head). It fails if there is no head.
        """
        events = self._pending_audit
        cut = [cut_body(event) for event in events]
        params = {
            "heads": [head for head, _ in cut],
            "tails": [tail for _, tail in cut],
            "ats": [_TS.process_bind_param(event["at"], self.conn.dialect) for event in events],
            "actors": [event["actor"] for event in events],
            "actions": [event["action"] for event in events],
            "object_types": [event["object_type"] for event in events],
            "object_ids": [event["object_id"] for event in events],
        }
        # with the writes held till now, and (``commit``) the COMMIT behind them
        (appended,) = self.send_now((_APPEND_PG, params), commit=commit)
        seq, digest = max(appended.rows, key=lambda row: int(row[0]))
        self.db.audit_head_seen = (int(seq), str(digest))
        self._pending_audit = []

    def _chained(self, seq: int, prev: str) -> tuple[list[dict[str, Any]], int, str]:
        """The buffered events as rows chained after ``(seq, prev)``, and the new head."""
        rows = []
        for event in self._pending_audit:
            seq += 1
            body = event_body(seq=seq, **event)
            digest = link(prev, body)
            rows.append(
                {
                    "seq": seq,
                    "at": event["at"],
                    "actor": event["actor"],
                    "action": event["action"],
                    "object_type": event["object_type"],
                    "object_id": event["object_id"],
                    "body": body,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        return rows, seq, prev

    def audit_head(self) -> Checkpoint | None:
        row = self.conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).first()
        return Checkpoint(int(row.seq), str(row.hash)) if row and row.seq else None

    def last_audit_seq(self) -> int:
        """The highest sequence number in the log (0 when it is empty)."""
        return int(self.conn.execute(select(func.max(audit_events.c.seq))).scalar() or 0)

    def list_audit(
        self,
        *,
        after: int | None = None,
        before: int | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        actions: Sequence[str] | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        query = select(audit_events).limit(limit)
        query = query.order_by(audit_events.c.seq.desc() if newest_first else audit_events.c.seq)
        if after is not None:
            query = query.where(audit_events.c.seq > after)
        if before is not None:
            query = query.where(audit_events.c.seq < before)
        if object_type:
            query = query.where(audit_events.c.object_type == object_type)
        if object_id:
            query = query.where(audit_events.c.object_id == object_id)
        if actor:
            query = query.where(audit_events.c.actor == actor)
        if actions:
            query = query.where(audit_events.c.action.in_(list(actions)))
        return [AuditEvent(**r._mapping) for r in self.conn.execute(query)]

    def audit_of(
        self, objects: Mapping[str, Collection[str]], *, seqs: tuple[int, int] | None = None
    ) -> list[AuditEvent]:
        """Every event about these objects (object type to ids), in sequence order.

        ``seqs`` bounds the sequence numbers (both included).
        """
        wanted = [
            and_(audit_events.c.object_type == kind, audit_events.c.object_id.in_(sorted(ids)))
            for kind, ids in objects.items()
            if ids
        ]
        if not wanted:
            return []
        query = select(audit_events).where(or_(*wanted)).order_by(audit_events.c.seq)
        if seqs is not None:
            query = query.where(audit_events.c.seq.between(*seqs))
        return [AuditEvent(**r._mapping) for r in self.conn.execute(query)]

    def stored_event_rows(self, batch: int | None = None, *, after: int = 0) -> Iterator[EventRow]:
        """Every event (after ``after``) in sequence order as plain tuples, to verify.

        The fields of :class:`StoredEvent` in its order, ``at`` as stored. Read
        in batches by sequence number through the driver's own cursor (in this
        transaction's snapshot): verifying a million events then costs the
        driver's row fetch, not an object per row.
        """
        if batch is None:  # (SQLite: small batches stay in the processor's cache)
            batch = 2000 if self.dialect == "postgresql" else 1000
        return chain.from_iterable(self._stored_event_batches(batch, after))

    def _stored_event_batches(self, batch: int, after: int) -> Iterator[list[EventRow]]:
        sql = _STORED_ROWS_PG if self.dialect == "postgresql" else _STORED_ROWS_SQLITE
        top = self.last_audit_seq()  # (the snapshot's: later events have higher numbers)
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(after, top, batch):
                cursor.execute(sql, (start, min(start + batch, top)))
                rows: list[EventRow] = list(cursor.fetchall())
                if rows:
                    yield rows
        finally:
            cursor.close()

    def stored_events(self, batch: int = 5000, *, after: int = 0) -> Iterator[StoredEvent]:
        """Every event (after ``after``) in sequence order, raw (``at`` as stored), to verify."""
        last = after
        raw_at = audit_events.c.at.cast(_TS.impl)  # the stored number, not a datetime
        columns = [c for c in audit_events.c if c.name != "at"] + [raw_at.label("at")]
        while True:
            rows = list(
                self.conn.execute(
                    select(*columns)
                    .where(audit_events.c.seq > last)
                    .order_by(audit_events.c.seq)
                    .limit(batch)
                )
            )
            if not rows:
                return
            for r in rows:
                yield StoredEvent(
                    seq=int(r.seq),
                    at=float(r.at),
                    actor=r.actor,
                    action=r.action,
                    object_type=r.object_type,
                    object_id=r.object_id,
                    body=r.body,
                    prev_hash=r.prev_hash,
                    hash=r.hash,
                )
            last = int(rows[-1].seq)
