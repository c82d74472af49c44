"""What a webhook is sent for one audit event: the body, its headers, its stable id.

``format: cdevents`` sends the CDEvent (:mod:`~interlock.events.cdevents`) in
CloudEvents HTTP binary mode: the CDEvent is the body, and its id, source,
type, subject and time are repeated as ``ce-*`` headers. ``format:
interlock`` sends the audit event as ``GET /api/v1/audit`` shows it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from interlock import __version__
from interlock.domain.records import AuditEvent, Deployment, Incident, Release
from interlock.events.cdevents import CONTENT_TYPE, Context, body_of, cdevent_of, kind_of
from interlock.spec.model import Tickets
from interlock.spec.notifications import Webhook

if TYPE_CHECKING:
    from interlock.storage.tx import Tx


@dataclass(frozen=True)
class Message:
    """One event ready to POST: its stable id, its type and its exact body."""

    seq: int
    id: str
    type: str
    body: bytes
    headers: dict[str, str]


class TxFacts:
    """The facts a CDEvent mapping looks up, read in one transaction (cached)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self._deployments: dict[int, Deployment | None] = {}
        self._releases: dict[int, Release | None] = {}
        self._incidents: dict[int, Incident | None] = {}

    def deployment(self, deployment_id: int) -> Deployment | None:
        if deployment_id not in self._deployments:
            self._deployments[deployment_id] = self.tx.get_deployment(deployment_id)
        return self._deployments[deployment_id]

    def release(self, release_id: int) -> Release | None:
        if release_id not in self._releases:
            self._releases[release_id] = self.tx.get_release(release_id, plan=False)
        return self._releases[release_id]

    def incident(self, incident_id: int) -> Incident | None:
        if incident_id not in self._incidents:
            self._incidents[incident_id] = self.tx.get_incident(incident_id)
        return self._incidents[incident_id]


def ticket_links(tickets: Tickets) -> Callable[[str], str | None] | None:
    """A function finding the first ticket in a text and linking it (if tickets have a url)."""
    if not tickets.url:
        return None
    pattern, url = re.compile(tickets.pattern), tickets.url

    def link(text: str) -> str | None:
        found = pattern.search(text)
        return url.replace("{ticket}", found.group(0)) if found else None

    return link


def wanted(hook: Webhook, names: tuple[str, ...]) -> bool:
    """Whether any of the event's names (audit action, CDEvents name) matches a pattern."""
    return any(fnmatch.fnmatchcase(n, p) for p in hook.events for n in names)


def interlock_document(event: AuditEvent, body: dict[str, Any], source: str) -> dict[str, Any]:
    """The audit event as ``GET /api/v1/audit`` shows it, with ``id`` and ``source``."""
    return {
        "id": event.hash,
        "source": source,
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "reason": body.get("reason"),
        "before": body.get("before"),
        "after": body.get("after"),
        "data": body.get("data") or {},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def render(
    event: AuditEvent, hook: Webhook, context: Context, facts: TxFacts | Any
) -> Message | None:
    """What ``hook`` is sent for ``event``, or ``None`` when it does not take it."""
    body = body_of(event)
    kind = kind_of(event, body)
    names = (event.action, kind.name) if kind else (event.action,)
    if not wanted(hook, names):
        return None
    headers = {
        "User-Agent": f"Interlock/{__version__}",
        "X-Interlock-Delivery": event.hash,
        "X-Interlock-Sequence": str(event.seq),
    }
    if hook.format == "interlock":
        document = interlock_document(event, body, context.source)
        headers.update({"Content-Type": "application/json", "X-Interlock-Event": event.action})
        return Message(event.seq, event.hash, event.action, _json(document), headers)
    cdevent = cdevent_of(event, body, kind, context, facts) if kind else None
    if cdevent is None:
        return None
    ctx = cdevent["context"]
    # CloudEvents HTTP binary mode: the CDEvent is the body, its context also in ce-* headers.
    headers.update(
        {
            "Content-Type": CONTENT_TYPE,
            "X-Interlock-Event": ctx["type"],
            "ce-specversion": "1.0",
            "ce-id": ctx["id"],
            "ce-source": ctx["source"],
            "ce-type": ctx["type"],
            "ce-subject": cdevent["subject"]["id"],
            "ce-time": ctx["timestamp"],
        }
    )
    return Message(event.seq, event.hash, ctx["type"], _json(cdevent), headers)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
