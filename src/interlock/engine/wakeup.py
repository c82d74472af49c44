"""Prompt wake-ups: a commit that makes work ready wakes the waiting workers at once."""

from __future__ import annotations

import threading


class Notifier:
    """A generation counter under a condition: waiters never miss a notification."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def on_commit(self, channels: set[str]) -> None:
        if "work" in channels:
            self.notify()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation moves past ``seen`` or ``timeout`` passes."""
        with self._cond:
            if self._generation == seen:
                self._cond.wait(timeout)
            return self._generation
