"""The outbox: messages written in the transaction of the event they tell of.

:class:`OutboxWriter` runs in :meth:`Tx.before_commit` with the audit events
the transaction is about to write. It maps each to a :class:`Notice`, routes
it to channels, and inserts one outbox row per channel (and, for a waiting
gate's e-mail, one per approver with links of their own). A transaction whose
events nobody is told of costs nothing more than a look at the action names.
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import datetime, timedelta
from typing import Any

from interlock.domain.records import Release
from interlock.domain.states import NodeState
from interlock.engine.access import Access
from interlock.engine.approvals import people_lookup
from interlock.engine.core import Engine
from interlock.errors import NotFound
from interlock.notifications.content import Notice, release_facts
from interlock.notifications.gates import address_of, approval_notice, personal_links
from interlock.spec.model import Config
from interlock.spec.notifications import EmailChannel, Notifications
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)

# audit action -> the event people are told of (None: decided by the event's details)
ACTIONS: dict[str, str | None] = {
    "release.created": "release.created",
    "deployment.running": None,
    "release.succeeded": "release.succeeded",
    "release.failed": "release.failed",
    "release.cancelled": "release.cancelled",
    "release.needs_attention": "needs_attention",
    "deployment.rolled_back": "release.rolled_back",
    "gate.waiting": None,
    "gate.succeeded": None,
    "gate.failed": None,
    "incident.opened": "incident.opened",
    "incident.resolved": "incident.resolved",
    "environment.locked": "lock.taken",
    "environment.unlocked": "lock.released",
    "window.overridden": "override.used",
}


# events that tell of a gate that still waits: routed as ``gate.waiting`` too
WAITING_AGAIN = ("gate.reminder", "gate.escalated", "gate.expired")


class OutboxWriter:
    """The audit hook of one engine (see the module)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, tx: Tx, events: list[dict[str, Any]]) -> None:
        relevant = [e for e in events if e["action"] in ACTIONS]
        expiring = [e for e in events if _expiring_approval(e)]
        if not (relevant or expiring) or self.engine.configs is None:
            return
        try:
            config: Config = self.engine.configs.active().config
        except NotFound:
            return
        settings = config.notifications
        if not settings.channels or not settings.routes:
            return
        try:
            with tx.conn.begin_nested():  # a savepoint: a failure here undoes only this
                self._write(tx, config, relevant, events)
                start_expiry_timers(tx, expiring)
        except Exception:  # a message that cannot be written must never stop a release
            log.exception(
                "notifications: the messages of %s could not be written (the change is kept)",
                ", ".join(sorted({e["action"] for e in relevant + expiring})),
            )

    def _write(
        self,
        tx: Tx,
        config: Config,
        relevant: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> None:
        settings = config.notifications
        rows: list[dict[str, Any]] = []
        for event in relevant:
            notice = self._notice(tx, config, event)
            if notice is not None:
                rows += outbox_rows(tx, self.engine, config, notice)
        tx.add_outbox(rows)
        if any(r["event"] == "gate.waiting" for r in rows):
            start_timers(tx, settings, events, self.engine.clock.now())

    def _notice(self, tx: Tx, config: Config, event: dict[str, Any]) -> Notice | None:
        action, data = event["action"], event.get("data") or {}
        base = config.notifications.public_url
        name = ACTIONS[action]
        common: dict[str, Any] = {"at": event["at"], "actor": event["actor"], "base_url": base}
        if event["object_type"] == "gate":
            node = tx.get_node(int(event["object_id"]))
            if node is None or node.executor != "approval":
                return None
            if action == "gate.waiting":
                if node.state is not NodeState.WAITING:
                    return None
                return approval_notice(tx, self.engine, node, "gate.waiting", **common)
            name = "gate.approved" if action == "gate.succeeded" else "gate.rejected"
            return approval_notice(
                tx, self.engine, node, name, reason=event.get("reason"), **common
            )
        if name is None:  # deployment.running: a release started in an environment
            if (event.get("before") or {}).get("state") != "queued":
                return None
            deployment = tx.get_deployment(int(event["object_id"]))
            if deployment is None or deployment.kind != "deploy":
                return None  # a rollback's deployment: `release.rolled_back` tells of it
            name = "release.started"
        release_id = _release_of(event, data)
        environment = data.get("environment")
        reason = event.get("reason")
        if event["object_type"] == "environment":
            environment = event["object_id"]
        if event["object_type"] == "incident":
            incident = tx.get_incident(int(event["object_id"]))
            if incident is not None:
                environment, release_id = incident.environment, incident.release_id
                reason = reason or incident.summary
        release = tx.get_release(release_id, plan=False) if release_id is not None else None
        reviewers = None
        if name == "override.used" and release is not None:
            reviewers = override_reviewers(tx, self.engine, config, release, environment, event)
        return Notice(
            event=name,
            reviewers=reviewers,
            environment=environment,
            release=release_facts(release, base) if release is not None else None,
            incident=int(event["object_id"]) if event["object_type"] == "incident" else None,
            reason=reason or (release.error if release is not None else None),
            **common,
        )


def override_reviewers(
    tx: Tx,
    engine: Engine,
    config: Config,
    release: Release,
    environment: str | None,
    event: dict[str, Any],
) -> list[dict[str, Any]]:
    """Who may review a break-glass override (``audit.read`` there), but not who used it."""
    access = Access(engine.configs)
    services = [i.service for i in release.items]
    people = people_lookup(tx, engine)
    names = set(config.notifications.people)
    for group in (*config.roles.values(), *config.teams.values()):
        names |= set(group)
    names |= {u.name for u in tx.list_users()}
    out = []
    for name in sorted(names - {event["actor"]}):
        found = people(name)
        if found is None or found[0].disabled or not found[1].is_person():
            continue
        if not access.allows(found[1], "audit.read", environment=environment, services=services):
            continue
        person = config.notifications.people.get(name)
        out.append({"name": name, "slack": person.slack if person is not None else None})
    return out


def _release_of(event: dict[str, Any], data: dict[str, Any]) -> int | None:
    if event["object_type"] == "release":
        return int(event["object_id"])
    found = data.get("release")
    return int(found) if isinstance(found, int) else None


def routed(settings: Notifications, config: Config, notice: Notice) -> list[str]:
    """The channels ``notice`` goes to: those of every route that matches it, in order."""
    services = [i["service"] for i in (notice.release or {}).get("items", [])]
    owners = {config.services[s].owner for s in services if s in config.services}
    event = "gate.waiting" if notice.event in WAITING_AGAIN else None
    out: list[str] = []
    for route in settings.routes:
        if not any(
            fnmatch.fnmatchcase(notice.event, p) or (event and fnmatch.fnmatchcase(event, p))
            for p in route.events
        ):
            continue
        # a freeze may close several environments: "staging, production"
        environments = set((notice.environment or "").split(", "))
        if route.environments is not None and not environments & set(route.environments):
            continue
        if route.services is not None and not set(services) & set(route.services):
            continue
        if route.teams is not None and not owners & set(route.teams):
            continue
        out += [c for c in route.channels if c not in out]
    return out


def outbox_rows(tx: Tx, engine: Engine, config: Config, notice: Notice) -> list[dict[str, Any]]:
    """One row per channel the notice is routed to (per approver on e-mail for a gate)."""
    settings = config.notifications
    subject = (
        f"release:{notice.release['id']}"
        if notice.release
        else f"incident:{notice.incident}"
        if notice.incident is not None
        else f"environment:{notice.environment}"
    )
    now = engine.clock.now()
    rows: list[dict[str, Any]] = []

    def row(channel: str, payload: dict[str, Any], recipient: str | None) -> None:
        rows.append(
            {
                "channel": channel,
                "event": notice.event,
                "recipient": recipient,
                "subject": subject,
                "payload": payload,
                "created_at": now,
            }
        )

    for name in routed(settings, config, notice):
        channel = settings.channel(name)
        if not isinstance(channel, EmailChannel):
            row(name, notice.as_payload(), None)
            continue
        if channel.to:
            row(name, notice.as_payload(), ", ".join(channel.to))
        if (
            channel.approvers
            and notice.gate
            and notice.event.startswith("gate.")
            and (notice.event == "gate.waiting" or notice.event in WAITING_AGAIN)
        ):
            for _, address, links in personal_links(tx, engine, config, notice, now):
                row(name, notice.as_payload() | {"links": links or None}, address)
        if channel.approvers and notice.event == "override.used":
            for reviewer in notice.reviewers or []:  # each reviewer in person
                found = address_of(tx, config, reviewer["name"])
                if found is not None:
                    row(name, notice.as_payload(), found)
    return rows


def start_timers(
    tx: Tx, settings: Notifications, events: list[dict[str, Any]], now: datetime
) -> None:
    """A waiting gate's reminder and escalation timers (once per gate)."""
    reminders = settings.gates
    for event in events:
        if event["action"] != "gate.waiting" or event["object_type"] != "gate":
            continue
        node_id = int(event["object_id"])
        if reminders.remind:
            tx.add_notify_timer("remind", node_id, now + timedelta(seconds=reminders.remind))
        if reminders.escalate:
            after = timedelta(seconds=reminders.escalate.after)
            tx.add_notify_timer("escalate", node_id, now + after)


def _expiring_approval(event: dict[str, Any]) -> bool:
    data = event.get("data") or {}
    return (
        event["action"] == "approval.given"
        and event["object_type"] == "release"
        and bool(data.get("expires_at"))
    )


def start_expiry_timers(tx: Tx, events: list[dict[str, Any]]) -> None:
    """An approval given to a waiting gate that expires: its gate's ``expire`` timer.

    One timer per gate, due at the earliest expiry not yet told of (it moves on
    to the next one when it fires; see :mod:`interlock.notifications.timers`).
    """
    for event in events:
        data = event.get("data") or {}
        expires_at = datetime.fromisoformat(data["expires_at"])
        key = f"gate/{data.get('gate')}"
        node = next(
            (
                n
                for d in tx.list_deployments(release_id=int(event["object_id"]))
                if d.environment == data.get("environment") and d.kind == "deploy"
                for n in tx.nodes_of(d.id)
                if n.key == key
            ),
            None,
        )
        if node is None or node.state is not NodeState.WAITING:
            continue  # not reached yet, or already decided: nobody waits on it
        found = [t for t in tx.notify_timers_of(node.id) if t.kind == "expire"]
        if not found:
            tx.add_notify_timer("expire", node.id, expires_at)
        elif found[0].done or found[0].due_at > expires_at:
            tx.restart_notify_timer(found[0].id, expires_at)
