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
    problems: list[dict[str, Any]] = []
    wanted = {c.seq: c for c in checkpoints}
    prev_hash = after.hash if after else GENESIS
    expected_seq = after.seq + 1 if after else 1
    count = 0
    last: Checkpoint | None = after

    def problem(seq: int, kind: str, message: str) -> None:
        problems.append({"seq": seq, "kind": kind, "message": message})

    for event in events:
        count += 1
        if event.seq != expected_seq:
            if event.seq > expected_seq:
                problem(
                    event.seq,
                    "missing",
                    f"events {expected_seq}..{event.seq - 1} are missing (deleted) before "
                    f"event {event.seq}",
                )
            else:
                problem(event.seq, "order", f"event {event.seq} is out of order")
        if event.prev_hash != prev_hash:
            problem(
                event.seq,
                "link",
                f"event {event.seq} does not link to the event before it "
                "(an event was deleted, inserted or re-ordered)",
            )
        if event.hash != link(event.prev_hash, event.body):
            problem(event.seq, "hash", f"event {event.seq} was changed after it was written")
        try:
            body = json.loads(event.body)
            column = _columns_match(event, body)
        except ValueError:
            column = "body"
        if column:
            problem(
                event.seq,
                "column",
                f"event {event.seq} was changed after it was written ({column} differs from "
                "the hashed record)",
            )
        if event.seq in wanted:
            if wanted[event.seq].hash != event.hash:
                problem(
                    event.seq,
                    "checkpoint",
                    f"event {event.seq} does not match checkpoint {wanted[event.seq]}",
                )
            del wanted[event.seq]
        prev_hash = event.hash
        expected_seq = event.seq + 1
        last = Checkpoint(event.seq, event.hash)
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
