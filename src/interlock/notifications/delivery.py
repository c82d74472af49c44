"""The sender: delivers the outbox in order per channel, at least once, with backoff.

Each channel has at most one sender thread at a time; it takes the oldest
undelivered message of its channel (a lease, so two processes do not both
send it), sends it, and records the outcome. A failure backs the channel off
(``backoff`` doubling up to ``max_backoff``) and keeps every later message
waiting behind it: when the channel is back, they go in order. Nothing here
runs in a release's transaction or a worker: a channel that is down costs a
release nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from interlock.domain.durations import doubled
from interlock.engine.core import Engine
from interlock.errors import NotFound
from interlock.notifications.content import Notice
from interlock.notifications.send import AnyChannel, send
from interlock.notifications.timers import fire_due
from interlock.spec.notifications import Notifications
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)

ROUND_SECONDS = 10.0
LEASE_GRACE = 30.0


@dataclass(frozen=True)
class Round:
    """What one channel's round did: messages sent, and the error that stopped it."""

    delivered: int
    error: str | None


def settings_of(engine: Engine) -> Notifications | None:
    if engine.configs is None:
        return None
    try:
        found: Notifications = engine.configs.active().config.notifications
    except NotFound:
        return None
    return found


def deliver(
    engine: Engine,
    channel: AnyChannel,
    *,
    budget: float = ROUND_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> Round:
    """Send ``channel``'s pending messages, oldest first, until one fails or time is up."""
    environ = os.environ if environ is None else environ
    deadline = time.monotonic() + budget
    delivered = 0
    while time.monotonic() < deadline:
        entry = engine.db.run(functools.partial(_claim, engine, channel))
        if entry is None:
            return Round(delivered, None)
        try:
            notice = Notice.from_payload(entry.payload)
            error = send(
                channel,
                notice,
                entry.recipient,
                environ,
                frozenset(engine.secrets.values()),
                key=idempotency_key(entry.id, notice),
            )
        except Exception as exc:  # a rendering bug is recorded and retried, never skipped
            log.exception("notification channel %s: message %s failed", channel.name, entry.id)
            error = f"{type(exc).__name__}: {exc}"
        done = engine.clock.now()
        if error is None:
            # the approver's links were for the mail only: they are not kept at rest
            kept = {**entry.payload, "links": None} if entry.payload.get("links") else None
            _record(engine, entry.id, done, None, None, kept)
            delivered += 1
            continue
        delay = doubled(channel.backoff, entry.attempts, most=channel.max_backoff)
        _record(engine, entry.id, done, error, done + timedelta(seconds=delay))
        log.warning(
            "notification channel %s: message %s: %s (next try in %.1fs)",
            channel.name,
            entry.id,
            error,
            delay,
        )
        return Round(delivered, error)
    return Round(delivered, None)


def idempotency_key(entry_id: int, notice: Notice) -> str:
    """The same for every try of one outbox message, different for any other message."""
    return f"interlock-{entry_id}-{notice.at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def _claim(engine: Engine, channel: AnyChannel, tx: Tx) -> Any:
    """The channel's oldest undelivered message, held for this sender; None: nothing due."""
    now = engine.clock.now()
    until = now + timedelta(seconds=channel.timeout + LEASE_GRACE)
    head = tx.outbox_head(channel.name)
    if head is None or (head.next_attempt_at is not None and head.next_attempt_at > now):
        return None
    return head if tx.claim_outbox(head, now, until) else None


def _record(
    engine: Engine,
    entry_id: int,
    at: datetime,
    error: str | None,
    retry_at: datetime | None,
    payload: dict[str, Any] | None = None,
) -> None:
    def work(tx: Tx) -> None:
        if error is None or retry_at is None:
            tx.outbox_delivered(entry_id, at, payload)
        else:
            tx.outbox_failed(entry_id, error, retry_at)

    engine.db.run(work)


class Notifier:
    """Fires the timers and starts a sender per channel, every ``interval`` seconds."""

    def __init__(self, engine: Engine, *, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._seen: set[int] = set()  # config versions whose freezes are timed

    def run_once(self) -> int:
        """Timers, then every channel in this thread (tests, with a manual clock)."""
        fire_due(self.engine, self._seen)
        settings = settings_of(self.engine)
        sent = 0
        for channel in settings.channels if settings else []:
            sent += deliver(self.engine, channel).delivered
        return sent

    def tick(self) -> list[threading.Thread]:
        """Fire the due timers; start a round for each channel with none in flight."""
        try:
            fire_due(self.engine, self._seen)
        except Exception:  # a timer bug must not stop the deliveries
            log.exception("notification timers failed")
        settings = settings_of(self.engine)
        if settings is None or not settings.channels:
            return []
        with self.engine.db.read() as tx:
            pending = tx.outbox_pending_counts()
        started = []
        for channel in settings.channels:
            if not pending.get(channel.name):
                continue
            with self._lock:
                if channel.name in self._busy:
                    continue
                self._busy.add(channel.name)
            thread = threading.Thread(
                target=self._round, args=(channel,), name=f"notify-{channel.name}", daemon=True
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
            started.append(thread)
        return started

    def _round(self, channel: AnyChannel) -> None:
        try:
            deliver(self.engine, channel)
        except Exception:  # a round must never take its thread down silently
            log.exception("notification channel %s: delivery round failed", channel.name)
        finally:
            with self._lock:
                self._busy.discard(channel.name)

    def start(self) -> Notifier:
        """Run :meth:`tick` every ``interval`` seconds in a thread until :meth:`stop`."""
        self._stop.clear()
        self._loop = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._loop.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("notifier tick failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking and wait (up to ``timeout``) for the rounds in flight."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._loop is not None:
            self._loop.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
