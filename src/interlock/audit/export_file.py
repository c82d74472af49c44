"""Reading an exported audit log (``interlock audit export``) back, for offline verification.

The file may be anything a user points at (a binary, ``/dev/zero``, a file
with no line ends), so reading is bounded: a line longer than
:data:`MAX_LINE` bytes, a line that is not UTF-8 JSON with an event's fields,
or an empty line before the end is an error naming ``file:line`` at once,
before the rest is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from interlock.audit.chain import StoredEvent
from interlock.errors import InvalidInput

# The longest line an export holds: an event's body (reason, before, after,
# data) with its hashes, escaped once more as a JSON string.
MAX_LINE = 8 * 1024 * 1024


def _not_an_export(path: Path, number: int, why: str) -> InvalidInput:
    return InvalidInput(
        f"{path}:{number}: not an exported audit event ({why}); export the log with "
        "`interlock audit export --out FILE`",
        field="file",
    )


def lines(
    path: Path,
    *,
    limit: int = MAX_LINE,
    bad: Callable[[Path, int, str], InvalidInput] = _not_an_export,
) -> Iterator[tuple[int, str]]:
    """The file's non-empty lines with their numbers, each at most ``limit`` bytes.

    ``bad`` makes the error for a line that cannot be one of the file's records.
    """
    blank_at = 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it: {exc.strerror}", field="file") from None
    with handle:
        number = 0
        while True:
            raw = handle.readline(limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise bad(path, number, f"the line is longer than {limit:,} bytes")
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                raise bad(path, number, "the line is not UTF-8 text") from None
            if not text.strip():
                blank_at = blank_at or number
                continue
            if blank_at:
                raise bad(path, blank_at, "an empty line before the end")
            yield number, text


def read_export(path: Path) -> Iterator[StoredEvent]:
    """The events of an export file in file order; the first bad line is an error."""
    for number, line in lines(path):
        try:
            raw = json.loads(line)
            yield StoredEvent(
                seq=int(raw["seq"]),
                at=float(raw["ts"]),
                actor=raw["actor"],
                action=raw["action"],
                object_type=raw["object_type"],
                object_id=raw["object_id"],
                body=raw["body"],
                prev_hash=raw["prev_hash"],
                hash=raw["hash"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _not_an_export(path, number, str(exc)) from None
