"""One long-poll for everything a page shows: answered when anything changes.

Every state change writes an audit event in its own transaction, so the audit
chain's head sequence is a counter of changes. ``GET /api/v1/changes?since=N``
answers as soon as the head is past ``N`` (or after ``wait`` seconds); the web UI
holds one such call per page, and reloads what it shows when the answer moves.
All waiting calls share one :class:`ChangeWatch`: one read of the head (a
one-row table) per ``interval`` while anyone waits, and at once after a commit of
this process moved a release.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


class ChangeWatch:
    """Waiters on the audit head; a shared poll and the commit hook wake them."""

    def __init__(self, head: Callable[[], int], *, interval: float = 1.0) -> None:
        self._head = head  # the audit head's sequence (a blocking read)
        self.interval = interval
        self._waiters: list[tuple[int, asyncio.Future[int]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None
        self._closed = False
        self.detach: Callable[[], None] | None = None

    async def wait(self, since: int | None, timeout: float) -> int:
        """The head once it is past ``since`` (at once without one), or after ``timeout``."""
        now = await run_in_threadpool(self._head)
        if since is None or now > since or self._closed or timeout <= 0:
            return now
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[int] = loop.create_future()
        waiter = (since, future)
        self._waiters.append(waiter)
        try:
            if self._poller is None or self._poller.done():
                self._kick = asyncio.Event()
                self._poller = loop.create_task(self._poll())
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return now
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def changed(self, _what: object) -> None:
        """Commit hook (any thread): read the head now rather than at the next interval."""
        loop, kick = self._loop, self._kick
        if loop is None or kick is None or not self._waiters:
            return
        try:
            loop.call_soon_threadsafe(kick.set)
        except RuntimeError:  # the loop has closed (the server is stopping)
            pass

    def close(self) -> None:
        """The server is stopping: answer every waiting call now (in the loop's thread)."""
        self._closed = True
        if self.detach is not None:
            self.detach()
        for since, future in list(self._waiters):
            if not future.done():
                future.set_result(since)

    async def _poll(self) -> None:
        kick = self._kick
        assert kick is not None
        while self._waiters:
            try:
                await asyncio.wait_for(kick.wait(), self.interval)
            except TimeoutError:
                pass
            kick.clear()
            try:
                head = await run_in_threadpool(self._head)
            except Exception:  # the database is away: the next round tries again
                log.warning("changes long-poll: reading the audit head failed", exc_info=True)
                continue
            for since, future in list(self._waiters):
                if head > since and not future.done():
                    future.set_result(head)
