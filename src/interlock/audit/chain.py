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
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

GENESIS = "0" * 64


# json.dumps with these options, its encoder made once (every event is encoded).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` that is hashed."""
    return _CANONICAL.encode(value)


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
    """:func:`verify` over plain rows (``EventRow``), as the database streams them."""
    problems: list[dict[str, Any]] = []
    wanted = {c.seq: c for c in checkpoints}
    last: Checkpoint | None = after
    count, walked = _walk(
        rows,
        problems,
        wanted,
        after.hash if after else GENESIS,
        after.seq + 1 if after else 1,
    )
    return _finish(problems, wanted, walked or last, head, count)


@dataclass
class Span:
    """One stretch of the log verified on its own (events ``lo < seq <= hi``).

    Everything :func:`verify_rows` checks, except whether its first event
    follows the event before the stretch: ``first`` (that event's seq and
    ``prev_hash``) and ``last`` let :func:`join_spans` check that link.
    ``seen`` are the checkpoints met in it.
    """

    count: int
    first: tuple[int, str] | None
    last: Checkpoint | None
    problems: list[dict[str, Any]]
    seen: list[int]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": list(self.first) if self.first else None,
            "last": str(self.last) if self.last else None,
            "problems": self.problems,
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        first = data["first"]
        return cls(
            count=int(data["count"]),
            first=(int(first[0]), str(first[1])) if first else None,
            last=Checkpoint.parse(data["last"]) if data["last"] else None,
            problems=list(data["problems"]),
            seen=[int(s) for s in data["seen"]],
        )


def verify_span(rows: Iterable[EventRow], checkpoints: Iterable[Checkpoint] = ()) -> Span:
    """Verify one stretch of the log (the rows of ``lo < seq <= hi``, in order)."""
    wanted = {c.seq: c for c in checkpoints}
    expected = set(wanted)
    stream = iter(rows)
    first = next(stream, None)
    if first is None:
        return Span(0, None, None, [], [])
    problems: list[dict[str, Any]] = []
    count, last = _walk(chain([first], stream), problems, wanted, first[7], first[0])
    return Span(count, (first[0], first[7]), last, problems, sorted(expected - set(wanted)))


def join_spans(
    spans: Iterable[Span],
    *,
    head: Checkpoint | None = None,
    checkpoints: Iterable[Checkpoint] = (),
) -> Verification:
    """The verification of the whole log from its stretches, in order: the same
    problems, in the same order, as :func:`verify_rows` over all of it."""
    problems: list[dict[str, Any]] = []
    wanted = {c.seq: c for c in checkpoints}
    prev_hash, expected_seq = GENESIS, 1
    last: Checkpoint | None = None
    count = 0
    for span in spans:
        count += span.count
        for seq in span.seen:
            wanted.pop(seq, None)
        if span.first is None or span.last is None:
            continue
        _follows(problems, span.first[0], span.first[1], expected_seq, prev_hash)
        problems.extend(span.problems)
        last = span.last
        prev_hash, expected_seq = last.hash, last.seq + 1
    return _finish(problems, wanted, last, head, count)


def _follows(
    problems: list[dict[str, Any]], seq: int, event_prev: str, expected_seq: int, prev_hash: str
) -> None:
    """Whether event ``seq`` comes right after the event before it, and links to it."""
    if seq != expected_seq:
        if seq > expected_seq:
            message = f"events {expected_seq}..{seq - 1} are missing (deleted) before event {seq}"
            problems.append({"seq": seq, "kind": "missing", "message": message})
        else:
            problems.append(
                {"seq": seq, "kind": "order", "message": f"event {seq} is out of order"}
            )
    if event_prev != prev_hash:
        problems.append(
            {
                "seq": seq,
                "kind": "link",
                "message": f"event {seq} does not link to the event before it "
                "(an event was deleted, inserted or re-ordered)",
            }
        )


def _walk(
    rows: Iterable[EventRow],
    problems: list[dict[str, Any]],
    wanted: dict[int, Checkpoint],
    prev_hash: str,
    expected_seq: int,
) -> tuple[int, Checkpoint | None]:
    """The hot loop of `audit verify`: the events walked and the last one.

    Per event one SHA-256 and a few string comparisons. The hashed body's
    columns are checked against its canonical text: it starts with the
    event's action and actor, ends with its seq and time exactly as
    ``json.dumps`` wrote them (``at`` is stored as that same double), and its
    last ``"object"`` member is the event's object. Only when that fails is
    the body parsed (:func:`_columns_match`), which decides, within the time
    tolerance, and names the column that differs. Checkpoints met are taken
    out of ``wanted``.
    """
    count = 0
    last_seq: int | None = None
    # The body's first members by action, then actor; its object's end by type
    # (a few of each: built once, not per event).
    prefixes: dict[str, dict[str, str]] = {}
    types: dict[str, str] = {}
    sha256 = hashlib.sha256
    quote = encode_basestring

    def problem(seq: int, kind: str, message: str) -> None:
        problems.append({"seq": seq, "kind": kind, "message": message})

    for seq, at, actor, action, object_type, object_id, body, event_prev, digest in rows:
        count += 1
        if seq != expected_seq or event_prev != prev_hash:
            _follows(problems, seq, event_prev, expected_seq, prev_hash)
        if digest != sha256(f"{event_prev}\n{body}".encode()).hexdigest():
            problem(seq, "hash", f"event {seq} was changed after it was written")
        by_actor = prefixes.get(action)
        if by_actor is None:
            if len(prefixes) > 1024:
                prefixes.clear()
            by_actor = prefixes[action] = {}
        prefix = by_actor.get(actor)
        if prefix is None:
            if len(by_actor) > 1024:
                by_actor.clear()
            prefix = by_actor[actor] = f'{{"action":{quote(action)},"actor":{quote(actor)},"after":'
        end = types.get(object_type)
        if end is None:
            if len(types) > 1024:
                types.clear()
            end = types[object_type] = f',"type":{quote(object_type)}}},"reason":'
        where = body.rfind(_OBJECT)
        if not (
            where > 0
            and body.startswith(prefix)
            and body.endswith(f',"seq":{seq},"ts":{at!r}}}')
            and body.startswith(quote(object_id) + end, where + _OBJECT_LENGTH)
        ):
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
    return count, Checkpoint(last_seq, prev_hash) if last_seq is not None else None


def _finish(
    problems: list[dict[str, Any]],
    wanted: dict[int, Checkpoint],
    last: Checkpoint | None,
    head: Checkpoint | None,
    count: int,
) -> Verification:
    """Checkpoints never met, and the head record against the last event."""

    def problem(seq: int, kind: str, message: str) -> None:
        problems.append({"seq": seq, "kind": kind, "message": message})

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


# Canonical JSON sorts the keys, so the top level ends with "object", "reason" (a
# string or null), "seq" and "ts", in that order. Inside a JSON string every quote is
# escaped, so ',"object":{"id":' occurs only as a member of an object, and its last
# occurrence is the top level's: what is nested in "after", "before" and "data"
# cannot be mistaken for it.
_OBJECT = ',"object":{"id":'
_OBJECT_LENGTH = len(_OBJECT)
