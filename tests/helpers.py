"""Small helpers for tests: configs on disk, waiting for a condition, running releases."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
# How often a test's HTTP server (http.server) looks whether it is asked to stop.
POLL = 0.02


def write_config(directory: Path, text: str, name: str = "interlock.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# The longest pause between two looks of wait_for (see there).
MOST_BETWEEN_LOOKS = 1.0


def wait_for(
    probe: Callable[[], T | None],
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout``.

    Between two looks it waits ``interval``, or as long as the last look took when that
    was longer (up to ``MOST_BETWEEN_LOOKS``): a probe that runs a CLI subprocess (a
    third to half a CPU second) would otherwise keep a core busy looking, on a machine
    whose two cores the suite shares. A cheap probe is looked at as often as before.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        began = time.monotonic()
        if began >= deadline:
            break
        last = probe()
        if last:
            return last
        now = time.monotonic()
        pause = max(interval, min(now - began, MOST_BETWEEN_LOOKS))
        time.sleep(max(0.0, min(pause, deadline - now)))
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


@contextmanager
def running(engine: Any, workers: int = 2, scheduler: bool = True) -> Iterator[Any]:
    """Workers (and the scheduler) of ``engine`` running for the ``with`` block."""
    from interlock.engine.runtime import Runtime

    runtime = Runtime(engine, workers=workers, scheduler=scheduler)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop(drain=2.0)


@contextmanager
def idle_workers(engine: Any, workers: int = 2) -> Iterator[Any]:
    """A pool of idle workers that would not look for work on their own for a minute.

    Only a hand-over inside a transaction starts their steps: no poll, no tick.
    """
    engine.settings.poll_interval = 60.0
    engine.settings.tick = 60.0
    from interlock.engine.runtime import Runtime

    runtime = Runtime(engine, workers=workers, scheduler=False, listen=False)
    runtime.start()
    assert runtime.pool is not None
    pool = runtime.pool
    wait_for(lambda: len(pool._idle._slots) == workers, message="every worker idle")
    try:
        yield pool
    finally:
        runtime.stop(drain=2.0)


def release_state(engine: Any, release_id: int) -> Any:
    with engine.db.read() as tx:
        return tx.get_release(release_id)


def wait_release_end(engine: Any, release_id: int, timeout: float = 20.0) -> Any:
    return wait_for(
        lambda: (r := release_state(engine, release_id)) and r.finished_at and r,
        timeout,
        message=f"release {release_id} to end",
    )


def process_alive(pid: int) -> bool:
    """A process that runs (a zombie nobody reaped has stopped running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@contextmanager
def serving(handler: Any) -> Iterator[str]:
    """``handler`` (an http.server request handler class) served on 127.0.0.1 in a
    thread; yields its base URL, stops the server on exit."""
    import threading
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, at every test's end
    thread = threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pipeline_of(cursor: Any) -> Any:
    """The psycopg pipeline a cursor's statement goes out in, or None (sent alone)."""
    return getattr(getattr(cursor, "connection", None), "_pipeline", None)


def round_trips(batches: list[Any]) -> int:
    """Round trips of statements whose pipelines (:func:`pipeline_of`) are ``batches``,
    in the order sent: a statement sent alone, or a pipeline of them."""
    return sum(
        1
        for n, pipeline in enumerate(batches)
        if pipeline is None or n == 0 or batches[n - 1] is not pipeline
    )
