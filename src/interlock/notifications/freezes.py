"""Freeze starting and ending: a timer in the database at the next boundary of a freeze.

The timer's ``due_at`` is the next start or end of a freeze. When it is due,
every boundary from it up to now is told (a server that was down tells what
it missed, once) and the timer moves to the next boundary, in one
transaction. A config that changes the freezes moves the timer when a
process first sees that config version.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from interlock.engine.calendar import FreezePeriod, freezes_between
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.notifications.content import Notice
from interlock.notifications.outbox import outbox_rows
from interlock.storage.notifications import NotifyTimer
from interlock.storage.tx import Tx

FREEZE_NODE = 0  # the freeze timer belongs to no gate
HORIZON = timedelta(days=366)
IDLE = timedelta(days=1)  # no freeze ahead: look again in a day


def next_boundary(engine: Engine, after: datetime) -> datetime:
    """The first start or end of a freeze after ``after`` (or a day on, if none)."""
    found = [
        moment
        for freeze in freezes_between(engine, after, after + HORIZON)
        for moment in (freeze.start, freeze.end)
        if moment > after
    ]
    return min(found, default=after + IDLE)


def ensure_freeze_timer(engine: Engine, version: int, seen: set[int]) -> None:
    """Start the freeze timer, or move it if config ``version`` brings a nearer boundary."""
    if version in seen:
        return
    now = engine.clock.now()
    due = next_boundary(engine, now)

    def work(tx: Tx) -> None:
        found = [t for t in tx.notify_timers_of(FREEZE_NODE) if t.kind == "freeze"]
        if not found:
            tx.add_notify_timer("freeze", FREEZE_NODE, due)
        elif found[0].due_at > due:
            tx.restart_notify_timer(found[0].id, due)

    engine.db.run(work)
    seen.add(version)


def fire_freezes(tx: Tx, engine: Engine, timer: NotifyTimer, config: Any) -> bool:
    """Tell each freeze that began or ended from the timer's time up to now; move it on."""
    now = engine.clock.now()
    since = timer.due_at
    if not tx.fire_notify_timer(timer, next_due=next_boundary(engine, now)):
        return False
    periods = freezes_between(engine, since - timedelta(seconds=1), now + timedelta(seconds=1))
    moments: list[tuple[datetime, str, FreezePeriod]] = []
    for freeze in periods:
        if since <= freeze.start <= now:
            moments.append((freeze.start, "freeze.started", freeze))
        if since <= freeze.end <= now:
            moments.append((freeze.end, "freeze.ended", freeze))
    rows = []
    for at, event, freeze in sorted(moments, key=lambda m: (m[0], m[1])):
        until = f" until {freeze.end.isoformat()}" if event == "freeze.started" else ""
        notice = Notice(
            event=event,
            at=at,
            actor=SYSTEM_ACTOR,
            environment=", ".join(freeze.environments),
            reason=f"{freeze.reason}{until} ({freeze.source})",
            base_url=config.notifications.public_url,
        )
        rows += outbox_rows(tx, engine, config, notice)
    tx.add_outbox(rows)
    return True
