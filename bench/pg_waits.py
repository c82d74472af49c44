"""What PostgreSQL sessions wait on while a command runs (lock-wait shares).

    python bench/pg_waits.py -- python bench/engine.py \\
        --database-url postgresql://postgres@127.0.0.1/postgres --mode processes --workers 4

Runs the command and, until it exits, samples ``pg_stat_activity`` every
``--interval`` seconds (only databases named ``--databases``, by default the
ones ``bench/engine.py`` creates for this command: other benchmarks sharing
the server are not counted). Each session waiting on a heavyweight lock is
counted once per sample under what it waits for: an advisory lock by its key
(727004: an environment's queue, 727005: delivery facts, ...), otherwise the
table of the row it waits for (from its tuple lock: a trigger's row shows under
its own table, not the statement's; failing that, read from the statement: an
upsert's wait, ``INSERT ... ON CONFLICT DO UPDATE`` on a row another transaction
changed, holds no tuple lock, so a trigger's upsert shows under the table of the
statement that fired it, as ``row of nodes`` did for a step's run counted in
``metric_days`` before migration 0026).
The shares are ratios within one run, so they mean something on a loaded
machine too. ``--detail N`` also shows, for each kind of wait, the N statements
that wait on it most and what the session holding the lock was doing meanwhile
(``idle in transaction``: waiting for its client; ``active``: running that statement).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
from collections import Counter

import psycopg

# A row lock's first waiter waits for the holder's transaction id, holding the row's
# tuple lock meanwhile; the others queue on that tuple lock. Either names the table.
_WAITING = """
SELECT a.pid, a.query, l.locktype, l.classid, l.objid, l.objsubid, a.datname,
       coalesce(l.relation, (
           SELECT h.relation FROM pg_locks h
           WHERE h.locktype = 'tuple' AND h.granted AND h.pid = a.pid LIMIT 1)) AS relation,
       (SELECT b.state || ': ' || b.query FROM pg_stat_activity b
        WHERE b.pid = (pg_blocking_pids(a.pid))[1]) AS holder
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.wait_event_type = 'Lock' AND a.datname LIKE %s AND a.pid <> pg_backend_pid()
"""
_RELATIONS = "SELECT oid::bigint, relname FROM pg_class WHERE relkind IN ('r', 'p')"
_TABLE = re.compile(r"\b(?:UPDATE|INTO|FROM)\s+\"?(\w+)", re.IGNORECASE)


def label(
    locktype: str | None,
    classid: int,
    objid: int,
    objsubid: int,
    query: str,
    table: str | None = None,
) -> str:
    """What one waiting session waits for, in a few words.

    ``table``: the table of the row waited for, when a tuple lock names it (a
    statement can wait on a row of another table than its own: a trigger's).
    """
    if locktype == "advisory":
        if objsubid == 2:  # the two-int4 form: (class, key)
            return f"advisory {classid}, ..."
        return f"advisory {(classid << 32) | objid}"
    if locktype is None:  # granted between the two views' reads
        return "advisory (granted meanwhile)" if "advisory" in (query or "") else "? (meanwhile)"
    if table is not None:
        return f"row of {table} ({locktype})"
    found = _TABLE.search(query or "")
    return f"row of {found.group(1) if found else '?'} ({locktype}, from the statement)"


class Tables:
    """Table names by oid, read from each database the waits are in (once per database)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.names: dict[str, dict[int, str]] = {}

    def name(self, database: str, oid: int | None) -> str | None:
        if oid is None:
            return None
        names = self.names.get(database)
        if names is None or oid not in names:
            base, _, _ = self.url.rpartition("/")
            try:
                with psycopg.connect(f"{base}/{database}", autocommit=True) as conn:
                    names = {int(o): str(n) for o, n in conn.execute(_RELATIONS)}
            except psycopg.Error:
                names = {}
            self.names[database] = names
        return names.get(oid)


def statement(query: str | None, width: int = 70) -> str:
    """A statement's first words, on one line (to tell the statements that wait apart)."""
    return " ".join((query or "?").split())[:width]


def sample(
    url: str,
    pattern: str,
    interval: float,
    stop: threading.Event,
    out: Counter[str],
    detail: Counter[tuple[str, str, str]] | None = None,
) -> int:
    """Sample until ``stop``; count each wait in ``out`` under its :func:`label`, and in
    ``detail`` (if given) under (label, the waiting statement, what its first blocker does)."""
    samples = 0
    tables = Tables(url)
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            samples += 1
            seen = set()
            rows = conn.execute(_WAITING, (pattern,)).fetchall()
            for pid, query, locktype, classid, objid, objsubid, database, relation, holder in rows:
                if pid in seen:
                    continue
                seen.add(pid)
                table = tables.name(database, relation) if locktype != "advisory" else None
                what = label(locktype, classid or 0, objid or 0, objsubid or 0, query, table)
                out[what] += 1
                if detail is not None:
                    detail[what, statement(query), statement(holder)] += 1
            stop.wait(interval)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument(
        "--databases",
        default=None,
        help="a LIKE pattern (default: the databases bench/engine.py creates for this command,"
        " tagged through INTERLOCK_BENCH_TAG, not those of other runs on the same server)",
    )
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument(
        "--detail",
        type=int,
        default=0,
        metavar="N",
        help="also show, for each kind of wait, its N most frequent waiting statements and"
        " what the session holding the lock was doing meanwhile (its state and statement)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("give the command to run after --")
    tag = f"w{os.getpid()}x"
    os.environ["INTERLOCK_BENCH_TAG"] = tag  # (the command inherits it)
    pattern = args.databases or f"interlock_bench_{tag}%"
    waits: Counter[str] = Counter()
    detail: Counter[tuple[str, str, str]] = Counter()
    stop = threading.Event()
    counted: list[int] = []
    sampler = threading.Thread(
        target=lambda: counted.append(
            sample(args.url, pattern, args.interval, stop, waits, detail if args.detail else None)
        )
    )
    sampler.start()
    try:
        code = subprocess.call(command)
    finally:
        stop.set()
        sampler.join()
    total = sum(waits.values())
    print(f"\nlock waits: {total} waiting sessions over {counted[0] if counted else 0} samples")
    for what, count in waits.most_common():
        print(f"  {count / total:>6.1%}  {count:>6}  {what}")
        if args.detail:
            found = [(n, q, h) for (w, q, h), n in detail.items() if w == what]
            for n, query, holder in sorted(found, reverse=True)[: args.detail]:
                print(f"          {n:>6}  {query}\n                  held by {holder}")
    sys.exit(code)


if __name__ == "__main__":
    main()
