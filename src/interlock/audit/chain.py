"""The hash chain: canonical JSON, linking, and verification.

Each event's ``body`` is its canonical JSON (sorted keys, no spaces, UTF-8);
its hash is ``sha256(prev_hash + "\\n" + body)``. The first event links to
``GENESIS``. Editing a body or a column, deleting, re-ordering or inserting an
event breaks the chain at that event; cutting events off the end is caught
against a checkpoint (sequence number and hash) kept outside the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hash: str, body: str) -> str:
    """The hash of an event whose canonical body is ``body``."""
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def event_body(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    reason: str | None = None,
    before: Any = None,
    after: Any = None,
    data: dict[str, Any] | None = None,
) -> str:
    """The canonical body of one event: who, what, when, why, before and after."""
    return canonical(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "ts": at.timestamp(),
            "actor": actor,
            "action": action,
            "object": {"type": object_type, "id": object_id},
            "reason": reason,
            "before": before,
            "after": after,
            "data": data or {},
        }
    )


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back from storage, for verification."""

    seq: int
    at: float  # seconds since the epoch as stored
    actor: str
    action: str
    object_type: str
    object_id: str
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """An event of the chain by sequence and hash: ``SEQ:HASH``."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        seq, sep, digest = text.strip().partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise ValueError(
                f"{text!r} is not a checkpoint: expected SEQ:HASH as printed by "
                "`interlock audit checkpoint`"
            )
        return cls(int(seq), digest)


@dataclass
class Verification:
    ok: bool
    count: int
    head: Checkpoint | None
    problems: list[dict[str, Any]]

    def first_problem(self) -> str | None:
        return self.problems[0]["message"] if self.problems else None


def _columns_match(event: StoredEvent, body: dict[str, Any]) -> str | None:
    expected = {
        "seq": event.seq,
        "actor": event.actor,
        "action": event.action,
        "object": {"type": event.object_type, "id": event.object_id},
    }
    for key, value in expected.items():
        if body.get(key) != value:
            return key
    if abs(float(body.get("ts", -1)) - event.at) > 1e-5:
        return "at"
    return None


# One stored event as a plain tuple, in StoredEvent's field order: what the
# database streams to :func:`verify_rows` without building an object per event.
EventRow = tuple[int, float, str, str, str, str, str, str, str]


def verify(
    events: Iterable[StoredEvent],
    *,
    head: Checkpoint | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    after: Checkpoint | None = None,
) -> Verification:
    """Walk the chain in sequence order; report every event where it breaks.

    ``head`` is what the database's head record says; ``checkpoints`` are
    kept outside the database and must all still be in the chain, unchanged.
    ``after`` is an event already known to be in the chain: ``events`` are
    the ones after it, and the first must link to it.
    """
    rows = (
        (e.seq, e.at, e.actor, e.action, e.object_type, e.object_id, e.body, e.prev_hash, e.hash)
        for e in events
    )
    return verify_rows(rows, head=head, checkpoints=checkpoints, after=after)


def verify_rows(
    rows: Iterable[EventRow],
    *,
    head: Checkpoint | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    after: Checkpoint | None = None,
) -> Verification:
    """:func:`verify` over plain rows (``EventRow``), as the database streams them.

    The hot loop of `audit verify`: per event one SHA-256 and a few string
    comparisons. The hashed body's columns are checked against its canonical
    text (:func:`_columns_fast`) and parsed only when that check fails, to
    name the column that differs.
    """
    problems: list[dict[str, Any]] = []
    wanted = {c.seq: c for c in checkpoints}
    prev_hash = after.hash if after else GENESIS
    expected_seq = after.seq + 1 if after else 1
    count = 0
    last_seq: int | None = after.seq if after else None
    prefixes: dict[tuple[str, str], str] = {}
    sha256 = hashlib.sha256

    def problem(seq: int, kind: str, message: str) -> None:
        problems.append({"seq": seq, "kind": kind, "message": message})

    for seq, at, actor, action, object_type, object_id, body, event_prev, digest in rows:
        count += 1
        if seq != expected_seq:
            if seq > expected_seq:
                problem(
                    seq,
                    "missing",
                    f"events {expected_seq}..{seq - 1} are missing (deleted) before event {seq}",
                )
            else:
                problem(seq, "order", f"event {seq} is out of order")
        if event_prev != prev_hash:
            problem(
                seq,
                "link",
                f"event {seq} does not link to the event before it "
                "(an event was deleted, inserted or re-ordered)",
            )
        if digest != sha256(f"{event_prev}\n{body}".encode()).hexdigest():
            problem(seq, "hash", f"event {seq} was changed after it was written")
        prefix = prefixes.get((action, actor))
        if prefix is None:
            if len(prefixes) > 4096:
                prefixes.clear()
            prefix = prefixes[(action, actor)] = (
                f'{{"action":{_string(action)},"actor":{_string(actor)},"after":'
            )
        if not (body.startswith(prefix) and _columns_fast(seq, at, object_type, object_id, body)):
            event = StoredEvent(
                seq, at, actor, action, object_type, object_id, body, event_prev, digest
            )
            try:
                column = _columns_match(event, json.loads(body))
            except (ValueError, TypeError, AttributeError):
                column = "body"
            if column:
                problem(
                    seq,
                    "column",
                    f"event {seq} was changed after it was written ({column} differs from "
                    "the hashed record)",
                )
        if seq in wanted:
            if wanted[seq].hash != digest:
                problem(
                    seq,
                    "checkpoint",
                    f"event {seq} does not match checkpoint {wanted[seq]}",
                )
            del wanted[seq]
        prev_hash = digest
        expected_seq = seq + 1
        last_seq = seq
    last = Checkpoint(last_seq, prev_hash) if last_seq is not None else None
    for checkpoint in wanted.values():
        problem(
            checkpoint.seq,
            "truncated",
            f"the log ends at event {last.seq if last else 0} but checkpoint {checkpoint} "
            "says it reached that far: events were cut off the end",
        )
    if head is not None and last is not None and head != last:
        if head.seq > last.seq:
            problem(
                last.seq + 1,
                "truncated",
                f"the head record says event {head.seq} but the log ends at {last.seq}: "
                "events were cut off the end",
            )
        else:
            problem(last.seq, "head", f"the head record does not match event {last.seq}")
    elif head is not None and last is None and head.seq > 0:
        problem(1, "truncated", f"the log is empty but the head record says event {head.seq}")
    return Verification(ok=not problems, count=count, head=last, problems=problems)


_OBJECT = ',"object":{"id":'


def _columns_fast(seq: int, at: float, object_type: str, object_id: str, body: str) -> bool:
    """Whether a canonical body (its ``action`` and ``actor`` already matched) holds the
    event's object, seq and time, read off its text without parsing it.

    Canonical JSON sorts the keys, so the top level ends with ``"object"``,
    ``"reason"`` (a string or null), ``"seq"`` and ``"ts"``, in that order.
    Inside a JSON string every quote is escaped, so ``,"object":{"id":`` and
    ``,"ts":`` occur only as members of objects, and the last ones are the top
    level's: what the values nested in ``after``, ``before`` and ``data``
    hold cannot be mistaken for them. ``False`` sends the event to the full
    parse (:func:`_columns_match`), which names the column that differs.
    """
    where = body.rfind(_OBJECT)
    if where < 0 or not body.startswith(
        f'{_string(object_id)},"type":{_string(object_type)}}},"reason":', where + len(_OBJECT)
    ):
        return False
    rest, sep, ts = body[:-1].rpartition(',"ts":')
    if not sep or body[-1] != "}" or not rest.endswith(f',"seq":{seq}'):
        return False
    try:
        return abs(float(ts) - at) <= 1e-5
    except ValueError:
        return False


def _string(value: str) -> str:
    """``value`` as canonical JSON writes a string (``ensure_ascii=False``)."""
    return encode_basestring(value)
