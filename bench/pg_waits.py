"""What PostgreSQL sessions wait on while a command runs (lock-wait shares).

    python bench/pg_waits.py -- python bench/engine.py \\
        --database-url postgresql://postgres@127.0.0.1/postgres --mode processes --workers 4

Runs the command and, until it exits, samples ``pg_stat_activity`` every
``--interval`` seconds (only databases named ``--databases``, by default the
ones ``bench/engine.py`` creates). Each session waiting on a heavyweight lock
is counted once per sample under what it waits for: an advisory lock by its
key (727004: an environment's queue, 727005: delivery facts, ...), otherwise
the table of the row it waits for, read from its statement. The shares are
ratios within one run, so they mean something on a loaded machine too.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
from collections import Counter

import psycopg

_WAITING = """
SELECT a.pid, a.query, l.locktype, l.classid, l.objid, l.objsubid
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.wait_event_type = 'Lock' AND a.datname LIKE %s AND a.pid <> pg_backend_pid()
"""
_TABLE = re.compile(r"\b(?:UPDATE|INTO|FROM)\s+\"?(\w+)", re.IGNORECASE)


def label(locktype: str | None, classid: int, objid: int, objsubid: int, query: str) -> str:
    """What one waiting session waits for, in a few words."""
    if locktype == "advisory":
        if objsubid == 2:  # the two-int4 form: (class, key)
            return f"advisory {classid}, ..."
        return f"advisory {(classid << 32) | objid}"
    if locktype is None:  # granted between the two views' reads
        return "advisory (granted meanwhile)" if "advisory" in (query or "") else "? (meanwhile)"
    table = _TABLE.search(query or "")
    return f"row of {table.group(1) if table else '?'} ({locktype})"


def sample(
    url: str, pattern: str, interval: float, stop: threading.Event, out: Counter[str]
) -> int:
    samples = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            samples += 1
            seen = set()
            for pid, query, locktype, classid, objid, objsubid in conn.execute(
                _WAITING, (pattern,)
            ):
                if pid in seen:
                    continue
                seen.add(pid)
                out[label(locktype, classid or 0, objid or 0, objsubid or 0, query)] += 1
            stop.wait(interval)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--databases", default="interlock_bench_%", help="a LIKE pattern")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise SystemExit("give the command to run after --")
    waits: Counter[str] = Counter()
    stop = threading.Event()
    counted: list[int] = []
    sampler = threading.Thread(
        target=lambda: counted.append(sample(args.url, args.databases, args.interval, stop, waits))
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
    sys.exit(code)


if __name__ == "__main__":
    main()
