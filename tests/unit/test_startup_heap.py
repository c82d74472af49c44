"""The heap `interlock server` freezes once it has started holds no garbage.

The server starts with the collector off and, once started, freezes what start-up
made (out of the collector's reach for good) and turns it on: garbage in that heap
was never freed (what parsing a config of 10,000 services left was 9 MB of it).
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

from interlock.cli.lifecycle import ServerLifecycle, Shutdown


class Runtime:
    def start(self, recover_all: bool = False) -> None:
        pass


class Cycle:
    me: Any = None


def test_start_up_garbage_is_collected_before_the_heap_is_frozen():
    runtime = Runtime()
    lifecycle = ServerLifecycle(runtime, Shutdown(runtime), drain=0)
    was_on = gc.isenabled()
    gc.disable()  # as `interlock server` does while it starts
    try:
        garbage = Cycle()
        garbage.me = garbage
        left = weakref.ref(garbage)
        del garbage
        lifecycle._start()
        assert gc.isenabled()
        assert left() is None  # frozen with the rest of the start-up heap, it was kept
    finally:
        gc.unfreeze()
        if not was_on:
            gc.disable()
