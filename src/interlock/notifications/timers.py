"""Reminders and escalations of waiting approval gates: timers in the database.

A due timer fires in one transaction with the messages it writes (a guarded
update moves it on), so a process killed at any point either wrote both or
neither: a restart never sends a reminder twice, and a missed one is sent once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from interlock.domain.states import NodeState
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.errors import NotFound
from interlock.notifications.gates import approval_notice, group_members
from interlock.notifications.outbox import outbox_rows
from interlock.storage.notifications import NotifyTimer


def fire_due(engine: Engine) -> int:
    """Fire every due timer; the number that fired."""
    if engine.configs is None:
        return 0
    now = engine.clock.now()
    with engine.db.read() as tx:
        due = tx.due_notify_timers(now)
    fired = 0
    for timer in due:

        def work(tx: Any, timer: NotifyTimer = timer) -> bool:
            return _fire(tx, engine, timer)

        if engine.db.run(work):
            fired += 1
    return fired


def _fire(tx: Any, engine: Engine, timer: NotifyTimer) -> bool:
    now = engine.clock.now()
    node = tx.get_node(timer.node_id)
    try:
        config = engine.configs.active().config
    except NotFound:
        return False
    settings = config.notifications
    if node is None or node.state is not NodeState.WAITING:
        tx.end_notify_timer(timer.id)  # the gate was decided: nothing more to say
        return False
    escalated: list[str] = []
    if timer.kind == "remind":
        every = settings.gates.remind
        next_due = None
        if every:
            step = timedelta(seconds=every)
            next_due = timer.due_at + step
            while next_due <= now:  # missed while stopped: one reminder, not a burst
                next_due += step
        event, reason = "gate.reminder", f"reminder {timer.fired + 1}: the gate still waits"
    else:
        next_due = None
        escalate = settings.gates.escalate
        if escalate is None:
            tx.end_notify_timer(timer.id)
            return False
        [(kind, group)] = escalate.to.items()
        escalated = group_members(tx, engine, kind, group)
        event, reason = "gate.escalated", f"escalated to {kind} {group}: the gate still waits"
    if not tx.fire_notify_timer(timer, next_due=next_due):
        return False  # another process fired it
    notice = approval_notice(
        tx,
        engine,
        node,
        event,
        at=now,
        actor=SYSTEM_ACTOR,
        base_url=settings.public_url,
        reason=reason,
        escalated_to=escalated,
    )
    if notice is not None:
        tx.add_outbox(outbox_rows(tx, engine, config, notice))
    return True
