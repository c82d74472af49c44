"""How the long-running processes start and stop: signals, the drain, the ASGI lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from interlock.api.routers.changes import watch_of as changes_watch

log = logging.getLogger("interlock")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """The SIGTERM and SIGINT handler of the long-running processes.

    The first signal stops claiming steps, sets :attr:`stop` and calls each of
    :attr:`on_stop` (the server stops serving); a second one cuts the drain short.
    """

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        self.on_stop: list[Callable[[], None]] = []
        self.signals = 0

    def install(self) -> None:
        """Handle the signals from now on (before any step starts: the default
        handlers would end the process and orphan the step)."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self)

    def __call__(self, signum: int, frame: Any = None) -> None:
        self.signals += 1
        if self.signals == 1:
            self.runtime.begin_stop()
            self.stop.set()
            for callback in self.on_stop:
                callback()
            return
        log.warning("%s again: stopping the running steps now", signal.Signals(signum).name)
        self.runtime.hurry()


class ServerLifecycle:
    """The server's start and stop, run by the ASGI lifespan (FastAPI's ``lifespan=``).

    Startup takes the stop signals over in the event loop, so the first one answers
    the waiting long polls at once (not cut off at the HTTP grace) and asks the
    HTTP server to stop; then it starts the runtime (recovering what a crash left
    running when ``recover_all``). Shutdown, once the open requests have finished
    or their grace has ended, stops the runtime: running steps get ``drain``
    seconds, a second signal cuts that short. :meth:`stop` is safe to call again
    (the process calls it once more in case the lifespan did not run to its end).
    """

    def __init__(
        self,
        runtime: Any,
        shutdown: Shutdown,
        *,
        drain: float,
        recover_all: bool = False,
        stop_serving: Callable[[], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.shutdown = shutdown
        self.drain = drain
        self.recover_all = recover_all
        self.stop_serving = stop_serving
        self.failure: BaseException | None = None  # why the startup failed, if it did
        self._started = False
        self._stopped = threading.Lock()
        self._done = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """The ASGI lifespan: start the runtime, yield while serving, stop it."""
        loop = asyncio.get_running_loop()
        # In the loop rather than uvicorn's handlers: the callbacks run in the loop's
        # thread, where the long polls wait.
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.shutdown, signum)
        watch = app.state.interlock.watch
        self.shutdown.on_stop.append(watch.close)
        self.shutdown.on_stop.append(changes_watch(app.state.interlock).close)
        if self.stop_serving is not None:
            self.shutdown.on_stop.append(self.stop_serving)
        try:
            if self.shutdown.stop.is_set():  # a signal came while the server was starting
                for callback in self.shutdown.on_stop:
                    callback()
            else:
                try:
                    await run_in_threadpool(self._start)
                except BaseException as exc:
                    self.failure = exc
                    raise
            yield
        finally:
            await run_in_threadpool(self.stop)
            # The loop's handlers would fall back to the defaults as the loop closes.
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            self.shutdown.install()

    def _start(self) -> None:
        self.runtime.start(recover_all=self.recover_all)
        self._started = True
        # What start-up made (the app, its routes, the parsed config, the imported
        # modules) lives as long as the process: out of the collector's reach, a full
        # collection walks only what came since (it stopped every thread for 80 ms
        # with a 1,000-service config, in the middle of an approval's wake-up).
        # `interlock server` turned the collector off while it started: on again.
        # One collection first: start-up's cyclic garbage (SQLAlchemy's metadata copies,
        # what parsing the config left) frozen with the rest would be kept for good.
        gc.collect()
        gc.freeze()
        gc.enable()

    def stop(self) -> None:
        """Stop the runtime once: running steps get the drain time, then are stopped."""
        with self._stopped:
            if self._done:
                return
            self._done = True
            if self._started:
                self.runtime.stop(self.drain)
