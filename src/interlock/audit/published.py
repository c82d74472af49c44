"""Checkpoints published outside the database: an append-only file of JSON lines.

Someone with write access to the database can cut events off the end of the
audit log and move the head record back, or re-hash the whole chain; the
chain alone cannot tell. A checkpoint (sequence and hash of the head) kept
where the database's administrators cannot write can: the chain must still
hold that event with that hash.

Each line of ``audit-checkpoints.jsonl`` is one record: ``seq``, ``hash``,
``at``, ``instance`` and ``prev``, the sha256 of the line before (``GENESIS``
for the first), so an edited, removed or re-ordered line breaks the file's
own chain. Lines are only ever appended (``O_APPEND``, under an exclusive
``flock``) and each is fsync'd before it counts. Reading is bounded like an
export's (:mod:`interlock.audit.export_file`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from interlock.audit.chain import GENESIS, Checkpoint
from interlock.audit.export_file import lines
from interlock.errors import EXIT_FAILED, InterlockError, InvalidInput

FILE_NAME = "audit-checkpoints.jsonl"
MAX_RECORD = 4096  # bytes of one line; a record is about 250


class CheckpointFileUnwritable(InterlockError):
    exit_code = EXIT_FAILED
    http_status = 503
    kind = "checkpoint-file-unwritable"
    title = "Checkpoint file cannot be written"


@dataclass(frozen=True)
class Published:
    """One published checkpoint and where it is written."""

    seq: int
    hash: str
    at: datetime
    instance: str
    path: Path
    line: int
    line_hash: str  # sha256 of this line: the next line's ``prev``

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.seq, self.hash)

    def describe(self) -> str:
        """``SEQ:HASH`` and where and when it was published, for people."""
        return (
            f"{self.checkpoint} (published {self.at.isoformat(timespec='seconds')} by "
            f"{self.instance}, {self.path}:{self.line})"
        )


def checkpoint_file(place: Path) -> Path:
    """The checkpoint file of a directory, or ``place`` itself when it is a file."""
    return place / FILE_NAME if place.is_dir() else place


def _bad(path: Path, number: int, why: str) -> InvalidInput:
    return InvalidInput(
        f"{path}:{number}: not a published audit checkpoint ({why}); the file is written "
        "only by the server's --audit-checkpoints publisher",
        field="checkpoint_file",
    )


def read_latest(path: Path) -> Published | None:
    """The last checkpoint of a checkpoint file, after checking every line's link.

    ``None`` if the file does not exist or holds no record yet.
    """
    if not path.exists():
        return None
    latest: Published | None = None
    prev = GENESIS
    for number, text in lines(path, limit=MAX_RECORD, bad=_bad):
        line = text.rstrip("\n")
        try:
            raw = json.loads(line)
            found = Published(
                seq=int(raw["seq"]),
                hash=str(raw["hash"]),
                at=datetime.fromisoformat(raw["at"]),
                instance=str(raw["instance"]),
                path=path,
                line=number,
                line_hash=hashlib.sha256(line.encode()).hexdigest(),
            )
            Checkpoint.parse(str(found.checkpoint))
            linked = raw["prev"] == prev
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad(path, number, str(exc)) from None
        if not linked:
            raise _bad(
                path, number, "it does not link to the line before: a line was edited or removed"
            )
        if latest is not None and found.seq < latest.seq:
            raise _bad(path, number, f"its event {found.seq} is before the line before's")
        latest, prev = found, found.line_hash
    return latest


def append(path: Path, head: Checkpoint, *, at: datetime, instance: str) -> Published:
    """Append ``head`` to the checkpoint file (created if need be) and fsync it.

    A head older than the file's last line is not written (two publishers
    raced): that line is returned instead.
    """
    try:
        return _append(path, head, at=at, instance=instance)
    except OSError as exc:
        raise CheckpointFileUnwritable(
            f"cannot write the audit checkpoint file {path}: {exc.strerror or exc}; check "
            "--audit-checkpoints (a directory this server may create and write)"
        ) from None


def _append(path: Path, head: Checkpoint, *, at: datetime, instance: str) -> Published:
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # two publishers on one file write one line each
        latest = read_latest(path)
        if latest is not None and latest.seq > head.seq:
            return latest  # another publisher got a newer head in first: the file only grows
        record = {
            "seq": head.seq,
            "hash": head.hash,
            "at": at.isoformat(),
            "instance": instance,
            "prev": latest.line_hash if latest else GENESIS,
        }
        line = json.dumps(record, sort_keys=True, separators=(",", ":"))
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new name must survive a crash too
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return Published(
        seq=head.seq,
        hash=head.hash,
        at=at,
        instance=instance,
        path=path,
        line=(latest.line + 1) if latest else 1,
        line_hash=hashlib.sha256(line.encode()).hexdigest(),
    )
