"""Long-polls of releases: answered the moment a release changes, at a bounded cost.

``GET /api/v1/releases/{id}?since=R&wait=S`` (what ``interlock release watch``
and CI jobs call) answers once the release's revision is past ``R``. Every
waiting call shares one :class:`ReleaseWatch`:

- a commit in this process that moves releases' revisions (the embedded
  workers, the API itself) wakes their waiters at once, from the commit hook
  (:meth:`Database.on_release_change`);
- what other processes commit (workers on other machines, offline commands)
  is found by one query per ``interval`` for every watched release together,
  so a hundred watchers cost the database what one does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

Revisions = Callable[[list[int]], dict[int, int]]

log = logging.getLogger(__name__)


class ReleaseWatch:
    """Waiters by release; commit hooks and a shared poll wake them."""

    def __init__(self, revisions: Revisions, *, interval: float = 0.2) -> None:
        self._revisions = revisions  # release ids -> current revisions (a blocking read)
        self.interval = interval
        self._waiters: dict[int, list[tuple[int, asyncio.Future[None]]]] = {}
        self._watched: frozenset[int] = frozenset()  # read from commit threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self.detach: Callable[[], None] | None = None  # stops the commit hook (set by the app)

    async def wait(self, release_id: int, since: int, timeout: float) -> None:
        """Return once the release's revision is past ``since``, or after ``timeout``."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[None] = loop.create_future()
        waiter = (since, future)
        self._waiters.setdefault(release_id, []).append(waiter)
        self._watched = frozenset(self._waiters)
        try:
            # Waiting from here on, so no commit falls between this read and the wait.
            now = await run_in_threadpool(self._revisions, [release_id])
            if _moved(now, release_id, since):
                return
            if self._poller is None or self._poller.done():
                self._poller = loop.create_task(self._poll())
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            pass
        finally:
            self._forget(release_id, waiter)

    def close(self) -> None:
        """The server is stopping: answer every waiting long-poll now (in the loop's thread).

        They get the release as it stands, and the client asks again of the next
        server, instead of being cut off when the server's grace period ends.
        """
        self._closed = True
        if self.detach is not None:
            self.detach()
        self._wake(frozenset(self._waiters), None)

    def changed(self, release_ids: frozenset[int]) -> None:
        """Commit hook (any thread): these releases' revisions moved."""
        loop = self._loop
        if loop is None or not (release_ids & self._watched):
            return
        try:
            loop.call_soon_threadsafe(self._wake, release_ids, None)
        except RuntimeError:  # the loop has closed (the server is stopping)
            pass

    def _wake(self, release_ids: frozenset[int], revisions: dict[int, int] | None) -> None:
        """Answer the waiters of these releases (those behind ``revisions``, when given)."""
        for release_id in release_ids:
            for since, future in self._waiters.get(release_id, ()):
                if revisions is not None and not _moved(revisions, release_id, since):
                    continue
                if not future.done():
                    future.set_result(None)

    def _forget(self, release_id: int, waiter: tuple[int, asyncio.Future[None]]) -> None:
        waiting = self._waiters.get(release_id, [])
        if waiter in waiting:
            waiting.remove(waiter)
        if not waiting:
            self._waiters.pop(release_id, None)
        self._watched = frozenset(self._waiters)

    async def _poll(self) -> None:
        """One read for every watched release per interval, while anyone waits."""
        while self._waiters:
            await asyncio.sleep(self.interval)
            ids = sorted(self._waiters)
            if not ids:
                break
            try:
                revisions = await run_in_threadpool(self._revisions, ids)
            except Exception:  # the database is away: the next round tries again
                log.warning("long-poll: reading release revisions failed", exc_info=True)
                continue
            self._wake(frozenset(ids), revisions)


def _moved(revisions: dict[int, int], release_id: int, since: int) -> bool:
    """Whether the release is past ``since``, or gone (the read that follows says 404)."""
    now = revisions.get(release_id)
    return now is None or now > since
