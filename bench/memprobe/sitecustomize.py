"""Loaded by the server `bench/waiting.py --tracemalloc` starts (PYTHONPATH), never by Interlock.

With ``INTERLOCK_BENCH_TRACEMALLOC=FILE`` in its environment, the process traces its
allocations from its first import (``PYTHONTRACEMALLOC`` sets the frames kept), and
each SIGUSR2 appends the live Python heap (after a full collection) and its top
allocation sites, by line, to FILE as one JSON line.
"""

from __future__ import annotations

import os

_OUT = os.environ.get("INTERLOCK_BENCH_TRACEMALLOC")

if _OUT:
    import gc
    import json
    import signal
    import tracemalloc
    from typing import Any

    if not tracemalloc.is_tracing():
        tracemalloc.start(int(os.environ.get("PYTHONTRACEMALLOC") or 1))

    def _dump(*_: Any) -> None:
        # What the start-up froze (gc.freeze) is never collected: garbage in it is kept.
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        gc.set_debug(0)
        kept: dict[str, int] = {}
        for found in gc.garbage:
            kept[type(found).__name__] = kept.get(type(found).__name__, 0) + 1
        garbage = sorted(kept.items(), key=lambda kv: -kv[1])[:10]
        gc.garbage.clear()
        gc.collect()
        gc.freeze()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        kinds = {}
        for kind in ("lineno", "filename"):
            kinds[kind] = [
                {"where": str(s.traceback), "kib": s.size / 1024, "count": s.count}
                for s in snapshot.statistics(kind)[:25]
            ]
        total = sum(s.size for s in snapshot.statistics("filename"))
        with open(_OUT, "a") as out:
            found = {"traced_mib": total / 2**20, "frozen": frozen, "garbage": garbage}
            out.write(json.dumps({**found, **kinds}) + "\n")

    signal.signal(signal.SIGUSR2, _dump)
