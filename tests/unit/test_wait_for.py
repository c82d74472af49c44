"""tests.helpers.wait_for, on a manual clock: a dear probe is looked at less often."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests import helpers


class Clock:
    """``time.monotonic`` and ``time.sleep`` that only move when told; records the sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(
        helpers, "time", SimpleNamespace(monotonic=found.monotonic, sleep=found.sleep)
    )
    return found


def probe(clock: Clock, takes: float, true_at_look: int) -> Callable[[], int | None]:
    looks = []

    def look() -> int | None:
        looks.append(clock.now)
        clock.now += takes
        return len(looks) if len(looks) >= true_at_look else None

    return look


def test_a_cheap_probe_is_looked_at_every_interval(clock: Clock) -> None:
    assert helpers.wait_for(probe(clock, 0.001, 4)) == 4
    assert clock.sleeps == [0.05, 0.05, 0.05]


def test_a_dear_probe_waits_as_long_as_its_look_took_up_to_a_second(clock: Clock) -> None:
    """A CLI run per look (0.4 s) once busied a core: now at most half of one looks."""
    assert helpers.wait_for(probe(clock, 0.4, 3)) == 3
    assert clock.sleeps == [0.4, 0.4]
    clock.sleeps.clear()
    assert helpers.wait_for(probe(clock, 3.0, 3)) == 3
    assert clock.sleeps == [helpers.MOST_BETWEEN_LOOKS] * 2


def test_the_timeout_still_holds_and_names_the_last_value(clock: Clock) -> None:
    with pytest.raises(AssertionError, match=r"timed out after 2.0s waiting for it \(last: 0\)"):
        helpers.wait_for(lambda: 0, timeout=2.0, message="it")
    assert clock.now == pytest.approx(2.0)  # no sleep beyond the deadline
    clock.now, clock.sleeps = 0.0, []
    with pytest.raises(AssertionError):
        helpers.wait_for(probe(clock, 0.7, 100), timeout=2.0)
    assert clock.now <= 2.0 + 0.7  # the last look began before the deadline
