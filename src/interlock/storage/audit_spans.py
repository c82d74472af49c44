"""`audit verify` of a large log in several processes, one stretch of it each.

Each event's hash depends only on its own stored ``prev_hash`` and body, so
stretches of the log (events ``lo < seq <= hi``) are verified independently,
each by ``python -m interlock.storage.audit_spans`` on its own connection,
and joined in order (:func:`interlock.audit.chain.join_spans`), which checks
that each stretch's first event follows and links to the last of the one
before. The answer is the one a single pass gives, problem for problem.

The request (database URL, stretch, checkpoints) goes over stdin, never the
command line (a URL may hold a password); the answer comes back as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from interlock.audit.chain import Checkpoint, EventRow, Span, verify_span

log = logging.getLogger(__name__)

_COLUMNS = "seq, at, actor, action, object_type, object_id, body, prev_hash, hash"
# A window of sequence numbers, not a LIMIT: a batch then reads at most its window's
# events whatever plan the database picks. (PostgreSQL, its statistics taken when the
# log was smaller, estimated a range or a LIMIT query to hold a few events and chose a
# scan of every event up to the stretch's or the log's end, sorted, for each batch.)
_SQLITE = f"SELECT {_COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq"
_PG = f"SELECT {_COLUMNS} FROM audit_events WHERE seq > %s AND seq <= %s ORDER BY seq"
BATCH = 2000  # events per query on PostgreSQL (a round trip each)
# On SQLite (in process, no round trip) small batches are faster: a thousand rows
# stay in the processor's cache while they are walked.
SQLITE_BATCH = 1000
# SQLite maps the file into memory instead of copying every page it reads.
SQLITE_MMAP = 1 << 31


def split(top: int, spans: int) -> list[tuple[int, int]]:
    """``(lo, hi]`` stretches covering events 1..top, as even as can be."""
    spans = max(1, min(spans, top))
    edges = [top * n // spans for n in range(spans + 1)]
    return [(edges[n], edges[n + 1]) for n in range(spans)]


def verify_in_processes(
    url: str, top: int, spans: int, checkpoints: Sequence[Checkpoint]
) -> list[Span] | None:
    """Verify events 1..top in ``spans`` processes at once; ``None`` if one failed."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    started = []
    answers: list[Span] | None = []
    for lo, hi in split(top, spans):
        request = {
            "url": url,
            "lo": lo,
            "hi": hi,
            "checkpoints": [str(c) for c in checkpoints if lo < c.seq <= hi],
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "interlock.storage.audit_spans"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:  # no interpreter to start (a frozen build): one pass
            log.warning("audit verify: cannot start a process (%s): one pass instead", exc)
            answers = None
            break
        started.append(process)
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(json.dumps(request).encode())
    for process in started:
        with process:  # closes its pipes and waits for it
            assert process.stdout is not None and process.stderr is not None
            out = process.stdout.read()
            err = process.stderr.read()
        if process.returncode != 0 or answers is None:
            if answers is not None:
                log.warning("audit verify: a stretch failed: %s", err.decode()[-500:])
            answers = None
            continue
        answers.append(Span.from_json(json.loads(out)))
    return answers


def stretch_rows(url: str, lo: int, hi: int, batch: int | None = None) -> Iterator[EventRow]:
    """Events ``lo < seq <= hi`` in order, as plain tuples, on a connection of its own."""
    if url.startswith("sqlite:///"):
        where = Path(url[len("sqlite:///") :]).resolve().as_uri()  # escapes ?, # and %
        connection: Any = sqlite3.connect(f"{where}?mode=ro", uri=True)
        connection.execute(f"PRAGMA mmap_size={SQLITE_MMAP}")
        sql = _SQLITE
        batch = batch or SQLITE_BATCH
    else:
        import psycopg

        connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        sql = _PG
        batch = batch or BATCH
    return chain.from_iterable(_batches(connection, sql, lo, hi, batch))


def _batches(connection: Any, sql: str, lo: int, hi: int, batch: int) -> Iterator[list[EventRow]]:
    """The events of ``lo < seq <= hi`` a window of ``batch`` sequence numbers at a time."""
    try:
        cursor = connection.cursor()
        for start in range(lo, hi, batch):
            cursor.execute(sql, (start, min(start + batch, hi)))
            rows: list[EventRow] = cursor.fetchall()
            if rows:
                yield rows
    finally:
        connection.close()


def main() -> None:
    request = json.loads(sys.stdin.read())
    rows = stretch_rows(request["url"], int(request["lo"]), int(request["hi"]))
    span = verify_span(rows, [Checkpoint.parse(c) for c in request["checkpoints"]])
    sys.stdout.write(json.dumps(span.to_json()))


if __name__ == "__main__":
    main()
