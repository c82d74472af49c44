"""Publishing the audit chain's head outside the database: on a timer and on demand.

The scheduler's leader appends the head to the checkpoint file
(:mod:`interlock.audit.published`) every ``audit_checkpoint_every`` seconds.
The timer is the file itself: the next checkpoint is due that long after the
last line's time, so it survives restarts and leader changes. Before a new
line is written, the chain must still hold the last published event with its
hash, and every event since must link on from it: a cut or re-hashed chain is
never blessed by a new checkpoint.
"""

from __future__ import annotations

import logging
import os
import weakref
from datetime import datetime
from pathlib import Path

from interlock.audit.chain import Checkpoint, link, verify
from interlock.audit.published import FILE_NAME, Published, append, read_latest
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.errors import Conflict, InterlockError
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)

PUBLISHED_ACTION = "audit.checkpoint_published"

# The last record read of each checkpoint file, by the file's size and time:
# the scheduler asks every tick, and the file is read again only when it changed.
_seen: dict[Path, tuple[tuple[int, int], Published | None]] = {}
# When each engine's publisher last refused (a broken chain, an unreadable file).
_refused: weakref.WeakKeyDictionary[Engine, datetime] = weakref.WeakKeyDictionary()


class NotPublishing(Conflict):
    kind = "audit-checkpoints-off"
    title = "No checkpoint publisher"


class ChainBroken(Conflict):
    kind = "audit-chain-broken"
    title = "The audit chain does not hold its published checkpoint"


def checkpoints_path(engine: Engine) -> Path | None:
    """The checkpoint file this process publishes to, or ``None`` if it publishes none."""
    directory = engine.settings.audit_checkpoints
    return directory / FILE_NAME if directory is not None else None


def latest_published(engine: Engine, path: Path | None = None) -> Published | None:
    """The newest checkpoint of ``path`` (default: this process's file), checked line by line."""
    path = path or checkpoints_path(engine)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    key = (stat.st_size, stat.st_mtime_ns)
    cached = _seen.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    found = read_latest(path)
    _seen[path] = (key, found)
    return found


def publish(engine: Engine, actor: str = SYSTEM_ACTOR) -> Published:
    """Append the chain's head to the checkpoint file now, and record that it did.

    The record is the audit event ``audit.checkpoint_published`` (the
    checkpoint in its data), which webhooks taking that action send signed,
    retried until answered, like every event. Refused (409) when no file is
    configured, when the log is empty, and when the chain no longer holds the
    last published checkpoint.
    """
    path = checkpoints_path(engine)
    if path is None:
        raise NotPublishing(
            "this server publishes no audit checkpoints: start it with --audit-checkpoints DIR "
            "(env INTERLOCK_AUDIT_CHECKPOINTS)"
        )
    latest = latest_published(engine, path)
    with engine.db.read() as tx:
        head = tx.audit_head()
        if head is None:
            raise Conflict("the audit log is empty: there is no checkpoint to publish yet")
        if latest is not None:
            events = tx.stored_events(after=latest.seq - 1)
            anchor = next(events, None)
            if (
                anchor is None
                or Checkpoint(anchor.seq, anchor.hash) != latest.checkpoint
                or link(anchor.prev_hash, anchor.body) != anchor.hash
            ):
                raise ChainBroken(
                    f"not publishing: the audit log no longer holds event {latest.seq} as "
                    f"checkpoint {latest.describe()} says (events were cut off the end or the "
                    "chain was re-hashed); run `interlock audit verify`"
                )
            result = verify(events, head=head, after=latest.checkpoint)
            if not result.ok:
                raise ChainBroken(
                    f"not publishing: the audit log is broken after checkpoint "
                    f"{latest.describe()}: {result.first_problem()}"
                )
    done = append(path, head, at=engine.clock.now(), instance=engine.instance)

    def record(tx: Tx) -> None:
        tx.audit(
            at=done.at,
            actor=actor,
            action=PUBLISHED_ACTION,
            object_type="audit",
            object_id=done.seq,
            data={
                "checkpoint": str(done.checkpoint),
                "seq": done.seq,
                "hash": done.hash,
                "instance": done.instance,
                "file": str(done.path),
                "line": done.line,
            },
        )

    engine.db.run(record)
    return done


def publish_when_due(engine: Engine) -> Published | None:
    """The scheduler's task: publish if the last checkpoint is older than the interval."""
    if checkpoints_path(engine) is None:
        return None
    now = engine.clock.now()
    every = engine.settings.audit_checkpoint_every
    refused = _refused.get(engine)
    if refused is not None and (now - refused).total_seconds() < every:
        return None  # said once an interval, not every tick
    try:
        latest = latest_published(engine)
        if latest is not None and (now - latest.at).total_seconds() < every:
            return None
        if latest is not None and _unchanged_since(engine, latest):
            return None  # nothing happened since: the last line still says it all
        return publish(engine)
    except InterlockError as exc:
        _refused[engine] = now
        log.error("audit checkpoint not published: %s", exc)
        return None


def _unchanged_since(engine: Engine, latest: Published) -> bool:
    """Nothing was recorded after ``latest`` but the event saying it was published."""
    with engine.db.read() as tx:
        head = tx.audit_head()
        if head == latest.checkpoint:
            return True
        if head is None or head.seq != latest.seq + 1:
            return False
        last = tx.list_audit(newest_first=True, limit=1)
    return (
        bool(last) and last[0].action == PUBLISHED_ACTION and last[0].object_id == str(latest.seq)
    )
