"""What a message says: a plain record every channel renders (Block Kit, Adaptive Card, mail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlock.domain.records import Release

TITLES = {
    "release.created": "Release {release} created",
    "release.started": "Release {release} started in {environment}",
    "release.succeeded": "Release {release} succeeded",
    "release.failed": "Release {release} failed",
    "release.cancelled": "Release {release} was cancelled",
    "release.rolled_back": "Release {release} was rolled back in {environment}",
    "gate.waiting": "Release {release} waits for approval in {environment}",
    "gate.reminder": "Reminder: release {release} still waits for approval in {environment}",
    "gate.escalated": "Escalated: release {release} waits for approval in {environment}",
    "gate.expired": "Approval expired for release {release} in {environment}",
    "gate.approved": "Release {release} was approved for {environment}",
    "gate.rejected": "Release {release} was rejected for {environment}",
    "needs_attention": "Release {release} needs attention",
    "incident.opened": "Incident {incident} opened in {environment}",
    "incident.resolved": "Incident {incident} resolved in {environment}",
    "lock.taken": "{environment} was locked",
    "lock.released": "{environment} was unlocked",
    "override.used": "A window was overridden for release {release} in {environment}",
    "digest": "What waits on you in Interlock",
    "freeze.started": "A freeze began in {environment}",
    "freeze.ended": "A freeze ended in {environment}",
    "test": "Test message from Interlock",
}


@dataclass(frozen=True)
class Notice:
    """One event as people are told of it (stored in the outbox as its payload)."""

    event: str
    at: datetime
    actor: str
    environment: str | None = None
    release: dict[str, Any] | None = None  # id, reason, created_by, state, items, url
    incident: int | None = None
    reason: str | None = None  # what happened, in the words of the event
    gate: dict[str, Any] | None = None  # name, rules, approved_by, approvers, expires_at
    links: dict[str, str] | None = None  # approve/reject of one approver (mail only)
    base_url: str | None = None
    waiting: list[str] | None = None  # a digest: one line per gate that waits on the person
    reviewers: list[dict[str, Any]] | None = None  # override.used: name, slack id of each

    def title(self) -> str:
        template = TITLES.get(self.event, self.event)
        return template.format(
            release=f"#{self.release['id']}" if self.release else "",
            environment=self.environment or "",
            incident=f"#{self.incident}" if self.incident is not None else "",
        )

    def services(self) -> list[str]:
        return [f"{i['service']}@{i['version']}" for i in (self.release or {}).get("items", [])]

    def lines(self) -> list[str]:
        """The facts, one per line (every renderer shows these)."""
        if self.waiting is not None:
            return [f"Waits on you: {line}" for line in self.waiting] or ["Nothing waits on you."]
        out = []
        if self.release:
            out.append(f"Release: #{self.release['id']} ({self.release.get('reason') or ''})")
            out.append(f"Services: {', '.join(self.services())}")
        if self.environment:
            out.append(f"Environment: {self.environment}")
        if self.reason:
            out.append(f"What happened: {self.reason}")
        out.append(f"By: {self.actor}")
        if self.reviewers is not None:
            names = [r["name"] for r in self.reviewers]
            out.append(f"To review: {', '.join(names) if names else 'nobody may review it'}")
        if self.gate:
            if self.gate.get("waits_on"):
                out.append(f"Waits on: {self.gate['waits_on']}")
            for rule in self.gate.get("rules", []):
                out.append(
                    f"Needs: {rule['rule']} ({rule['missing']} more); can approve: "
                    + (", ".join(rule["eligible"]) or "nobody")
                )
            if self.gate.get("expired"):
                out.append(f"Approval expired: {', '.join(self.gate['expired'])}")
            approved = self.gate.get("approved_by") or []
            out.append(f"Approved by: {', '.join(approved) if approved else 'nobody yet'}")
            if self.gate.get("expires_at"):
                out.append(f"Links expire: {self.gate['expires_at']}")
        return out

    def release_url(self) -> str | None:
        return (self.release or {}).get("url")

    def as_payload(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "environment": self.environment,
            "release": self.release,
            "incident": self.incident,
            "reason": self.reason,
            "gate": self.gate,
            "links": self.links,
            "base_url": self.base_url,
            "waiting": self.waiting,
            "reviewers": self.reviewers,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Notice:
        return cls(**{**payload, "at": datetime.fromisoformat(payload["at"])})


def release_facts(release: Release, base_url: str | None) -> dict[str, Any]:
    return {
        "id": release.id,
        "reason": release.reason,
        "created_by": release.created_by,
        "state": release.state.value,
        "items": [{"service": i.service, "version": i.version} for i in release.items],
        "url": f"{base_url}/ui/releases/{release.id}" if base_url else None,
    }
