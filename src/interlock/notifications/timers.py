"""Reminders and escalations of waiting approval gates: timers in the database.

A due timer fires in one transaction with the messages it writes (a guarded
update moves it on), so a process killed at any point either wrote both or
neither: a restart never sends a reminder twice, and a missed one is sent once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from interlock.domain.records import Node
from interlock.domain.states import NodeState
from interlock.engine.approvals import gate_status
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.errors import NotFound
from interlock.notifications.content import Notice
from interlock.notifications.freezes import ensure_freeze_timer, fire_freezes
from interlock.notifications.gates import address_of, approval_notice, group_members
from interlock.notifications.outbox import outbox_rows, routed
from interlock.spec.model import Config
from interlock.spec.notifications import Digest, EmailChannel
from interlock.spec.windows import zone_of
from interlock.storage.notifications import NotifyTimer
from interlock.storage.tx import Tx

DIGEST_NODE = 0  # the digest's timer belongs to no gate


def next_digest(digest: Digest, after: datetime) -> datetime:
    """The first ``digest.at`` (in its time zone) after ``after``."""
    zone = zone_of(digest.timezone)
    hour, minute = (int(x) for x in digest.at.split(":"))
    day = after.astimezone(zone).date()
    for offset in range(3):
        local = datetime.combine(day + timedelta(days=offset), datetime.min.time(), zone)
        candidate = local.replace(hour=hour, minute=minute).astimezone(UTC)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a day has the time")


def ensure_digest(engine: Engine, digest: Digest | None) -> None:
    """Start the digest's timer if the config asks for one and none runs (a read otherwise)."""
    if digest is None:
        return
    with engine.db.read() as tx:
        running = [t for t in tx.notify_timers_of(DIGEST_NODE) if t.kind == "digest"]
    if running and not running[0].done:
        return
    due = next_digest(digest, engine.clock.now())

    def work(tx: Tx) -> None:
        if running:  # ended while no digest was configured: start it again
            tx.restart_notify_timer(running[0].id, due)
        else:
            tx.add_notify_timer("digest", DIGEST_NODE, due)

    engine.db.run(work)


def fire_due(engine: Engine, seen: set[int] | None = None) -> int:
    """Fire every due timer; the number that fired.

    ``seen``: the config versions whose freezes this process has timed already.
    """
    if engine.configs is None:
        return 0
    try:
        active = engine.configs.active()
    except NotFound:
        return 0
    ensure_digest(engine, active.config.notifications.gates.digest)
    if active.config.notifications.channels:
        ensure_freeze_timer(engine, active.version, set() if seen is None else seen)
    now = engine.clock.now()
    with engine.db.read() as tx:
        due = tx.due_notify_timers(now)
    fired = 0
    for timer in due:

        def work(tx: Tx, timer: NotifyTimer = timer) -> bool:
            return _fire(tx, engine, timer)

        if engine.db.run(work):
            fired += 1
    return fired


def _fire(tx: Tx, engine: Engine, timer: NotifyTimer) -> bool:
    now = engine.clock.now()
    node = tx.get_node(timer.node_id)
    try:
        config = engine.configs.active().config
    except NotFound:
        return False
    settings = config.notifications
    if timer.kind == "digest":
        return _digest(tx, engine, timer, config)
    if timer.kind == "freeze":
        return fire_freezes(tx, engine, timer, config)
    if timer.kind == "expire":
        return _expired(tx, engine, timer, config, node)
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
    if timer.kind == "escalate":
        _escalate(tx, node, kind, group, escalated, now)
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


def _escalate(tx: Tx, node: Node, kind: str, group: str, members: list[str], now: datetime) -> None:
    """The gate's approvers now include ``kind`` ``group``: stored and audited together."""
    if not tx.add_gate_escalation(node.id, kind, group, now):
        return
    deployment = tx.get_deployment(node.deployment_id)
    release_id = deployment.release_id if deployment is not None else None
    tx.audit(
        at=now,
        actor=SYSTEM_ACTOR,
        action="gate.escalated",
        object_type="release" if release_id is not None else "deployment",
        object_id=release_id if release_id is not None else node.deployment_id,
        reason=f"the gate waited too long: {kind} {group} may approve it too",
        data={
            "environment": deployment.environment if deployment is not None else None,
            "gate": node.key.removeprefix("gate/"),
            "to": {kind: group},
            "added": members,
        },
    )


def _expired(tx: Tx, engine: Engine, timer: NotifyTimer, config: Config, node: Node | None) -> bool:
    """Approvals of a still-waiting gate expired: it needs them again; say so once."""
    now = engine.clock.now()
    if node is None or node.state is not NodeState.WAITING:
        tx.end_notify_timer(timer.id)  # the gate was decided: nothing more to say
        return False
    deployment = tx.get_deployment(node.deployment_id)
    release = (
        tx.get_release(deployment.release_id) if deployment and deployment.release_id else None
    )
    if deployment is None or release is None:
        tx.end_notify_timer(timer.id)
        return False
    environment = deployment.environment or ""
    given = [
        (a.approver, a.expires_at)
        for a in tx.approvals_for(release.id, environment, node.key)
        if a.decision == "approve" and a.expires_at is not None
    ]
    _, valid, _ = gate_status(tx, engine, node, environment, release, now)
    still = {a.approver for a in valid}
    expired = [(who, at) for who, at in given if timer.due_at <= at <= now and who not in still]
    later = [at for _, at in given if at > now]
    if not tx.fire_notify_timer(timer, next_due=min(later) if later else None):
        return False  # another process fired it
    names = sorted({who for who, _ in expired})
    if not names:
        return False  # renewed meanwhile: the gate does not need them again
    until = max(at for _, at in expired).isoformat(timespec="minutes")
    reason = f"the approval of {', '.join(names)} expired ({until}): the gate needs it again"
    tx.audit(
        at=now,
        actor=SYSTEM_ACTOR,
        action="gate.approval_expired",
        object_type="release",
        object_id=release.id,
        reason=reason,
        data={"environment": environment, "gate": node.key.removeprefix("gate/"), "expired": names},
    )
    settings = config.notifications
    notice = approval_notice(
        tx,
        engine,
        node,
        "gate.expired",
        at=now,
        actor=SYSTEM_ACTOR,
        base_url=settings.public_url,
        reason=reason,
    )
    if notice is not None:
        if notice.gate is not None:
            notice.gate["expired"] = names
        tx.add_outbox(outbox_rows(tx, engine, config, notice))
    return True


def _digest(tx: Tx, engine: Engine, timer: NotifyTimer, config: Config) -> bool:
    """Each person with an address gets the approval gates that wait on them, by mail."""
    settings = config.notifications
    now = engine.clock.now()
    digest = settings.gates.digest
    if digest is None:
        tx.end_notify_timer(timer.id)
        return False
    if not tx.fire_notify_timer(timer, next_due=next_digest(digest, now)):
        return False
    waiting: dict[str, list[str]] = {}
    for node in tx.waiting_nodes("approval", 500):
        notice = approval_notice(
            tx, engine, node, "gate.waiting", at=now, actor=SYSTEM_ACTOR, base_url=None
        )
        if notice is None or notice.release is None:
            continue
        since = node.started_at.isoformat(timespec="minutes") if node.started_at else "?"
        link = (
            f" {settings.public_url}/ui/releases/{notice.release['id']}"
            if settings.public_url
            else ""
        )
        line = (
            f"release #{notice.release['id']} ({', '.join(notice.services())}) "
            f"in {notice.environment}, waiting since {since}{link}"
        )
        for person in (notice.gate or {}).get("approvers", []):
            waiting.setdefault(person, []).append(line)
    probe = Notice(event="digest", at=now, actor=SYSTEM_ACTOR, base_url=settings.public_url)
    rows = []
    for name in routed(settings, config, probe):
        if not isinstance(settings.channel(name), EmailChannel):
            continue  # a digest is personal: mail only
        for person, lines in sorted(waiting.items()):
            address = address_of(tx, config, person)
            if address is None:
                continue
            payload = Notice(
                event="digest",
                at=now,
                actor=SYSTEM_ACTOR,
                base_url=settings.public_url,
                waiting=lines,
            ).as_payload()
            rows.append(
                {
                    "channel": name,
                    "event": "digest",
                    "recipient": address,
                    "subject": f"digest:{person}",
                    "payload": payload,
                    "created_at": now,
                }
            )
    tx.add_outbox(rows)
    return True
