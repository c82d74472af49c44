"""Prompt wake-ups: a commit that makes work ready wakes the waiting workers at once.

Better still, a transaction that makes a node ready while a worker of this
process is idle claims the node for that worker in the same transaction, and
hands it over the moment it commits (:class:`Idle`): no wake-up round-trip,
no claim transaction of its own, no polling on the way.
"""

from __future__ import annotations

import threading

from interlock.domain.records import Deployment, Node, Release

# A node a transaction leased for a worker, with its deployment and release (if any).
Claimed = tuple[Node, Deployment, Release | None]


class Notifier:
    """A generation counter under a condition: waiters never miss a notification."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._watchers: set[threading.Event] = set()

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            for event in self._watchers:
                event.set()

    def on_commit(self, channels: set[str]) -> None:
        if "work" in channels:
            self.notify()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation moves past ``seen`` or ``timeout`` passes."""
        with self._cond:
            if self._generation == seen:
                self._cond.wait(timeout)
            return self._generation

    def watch(self, event: threading.Event, seen: int) -> None:
        """Set ``event`` at every notification from now on (at once if one came after ``seen``)."""
        with self._cond:
            self._watchers.add(event)
            if self._generation != seen:
                event.set()

    def unwatch(self, event: threading.Event) -> None:
        with self._cond:
            self._watchers.discard(event)


class Slot:
    """An idle worker: woken by a notification, or handed a node claimed for it."""

    __slots__ = ("handed", "item", "reserved", "wake", "worker")

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.wake = threading.Event()  # a notification, or the hand-over below
        self.handed = threading.Event()  # set once a reserving transaction ended
        self.reserved = False  # a transaction took this worker: it waits for ``handed``
        self.item: Claimed | None = None  # what that transaction claimed for it (None: nothing)

    def give(self, item: Claimed | None) -> None:
        self.item = item
        self.handed.set()
        self.wake.set()


class Idle:
    """The idle workers of a pool; the most recently idle is reserved first (it is warm)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: list[Slot] = []
        self.closed = False

    def enter(self, slot: Slot) -> bool:
        """Make ``slot`` reservable (False once the pool stops)."""
        slot.wake.clear()
        slot.handed.clear()
        slot.reserved = False
        slot.item = None
        with self._lock:
            if self.closed:
                return False
            self._slots.append(slot)
            return True

    def leave(self, slot: Slot) -> bool:
        """Stop being reservable; True if a transaction reserved ``slot`` first."""
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)
            return slot.reserved

    def waiting(self) -> bool:
        """Whether a worker is idle now (so no ready node waits for one)."""
        return bool(self._slots) and not self.closed

    def reserve(self) -> Slot | None:
        with self._lock:
            if self.closed or not self._slots:
                return None
            slot = self._slots.pop()
            slot.reserved = True
            return slot

    def close(self) -> None:
        with self._lock:
            self.closed = True
