"""A waiting approval gate as a message: who can act, who did, until when; their links."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from interlock.audit.chain import canonical
from interlock.domain.records import Node
from interlock.engine.approvals import content_hash, members_lookup
from interlock.engine.core import Engine
from interlock.engine.waits import approval_wait
from interlock.gates.approval import Slot
from interlock.notifications.content import Notice, release_facts
from interlock.spec.model import Config
from interlock.storage.tx import Tx

LINK_KEY_VARIABLE = "INTERLOCK_LINK_KEY"
DEFAULT_LINK_LIFE = 7 * 86400.0


def gate_name(node: Node) -> str:
    return node.key.removeprefix("gate/")


def gate_digest(node: Node, environment: str) -> str:
    """What a link is bound to besides the release: the gate as it was planned."""
    body = {"environment": environment, "key": node.key, "spec": node.spec}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def approval_notice(
    tx: Tx,
    engine: Engine,
    node: Node,
    event: str,
    *,
    at: datetime,
    actor: str,
    base_url: str | None,
    reason: str | None = None,
    escalated_to: list[str] | None = None,
) -> Notice | None:
    """The notice of an approval gate's ``event`` (waiting, reminder, approved, ...)."""
    deployment = tx.get_deployment(node.deployment_id)
    if deployment is None or deployment.release_id is None:
        return None
    release = tx.get_release(deployment.release_id)
    if release is None:
        return None
    environment = deployment.environment or ""
    now = engine.clock.now()
    # The one account of the wait that the API, the CLI and the web UI show too.
    wait = approval_wait(tx, engine, release, deployment, node, now)
    rules: list[dict[str, Any]] = [
        {
            "rule": r.rule,
            "missing": r.missing,
            "eligible": list(r.can_clear),
            "given_by": [g.by for g in r.given_by],
        }
        for r in wait.rules
    ]
    approvers = sorted({n for r in rules if r["missing"] for n in r["eligible"]})
    life = link_life(engine, node)
    gate = {
        "name": gate_name(node),
        "node": node.id,
        "rules": rules,
        "approved_by": sorted({g.by for r in wait.rules for g in r.given_by}),
        "waits_on": wait.summary,
        "approvers": approvers,
        "escalated_to": sorted(escalated_to or []),
        "expires_at": (now + timedelta(seconds=life)).isoformat(),
        "action": f"{release.id}:{environment}:{gate_name(node)}",
    }
    return Notice(
        event=event,
        at=at,
        actor=actor,
        environment=environment,
        release=release_facts(release, base_url),
        reason=reason,
        gate=gate,
        base_url=base_url,
    )


def link_life(engine: Engine, node: Node) -> float:
    """Seconds a link lasts: ``notifications.gates.link_expires``, else the gate's ``expires``."""
    config = engine.configs.active().config if engine.configs is not None else None
    if config is not None and config.notifications.gates.link_expires:
        return float(config.notifications.gates.link_expires)
    expires = node.spec.get("expires")
    return float(expires) if expires else DEFAULT_LINK_LIFE


def group_members(tx: Tx, engine: Engine, kind: str, group: str) -> list[str]:
    members = members_lookup(tx, engine)
    return sorted(members(Slot(kind=kind, group=group, count=1)))


def link_key(tx: Tx) -> bytes:
    """The key links are signed with: INTERLOCK_LINK_KEY, else one made and stored once."""
    given = os.environ.get(LINK_KEY_VARIABLE)
    if given:
        return given.encode()
    return str(tx.notify_key("approval-links", secrets.token_hex(32))).encode()


def link_signature(key: bytes, link: Any) -> str:
    """The HMAC-SHA256 over everything a link is bound to."""
    body = "|".join(
        str(v)
        for v in (
            link.id,
            link.release_id,
            link.environment,
            link.gate,
            link.approver,
            link.content_hash,
            link.gate_digest,
            link.expires_at.timestamp(),
        )
    )
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def address_of(tx: Tx, config: Config, person: str) -> str | None:
    found = config.notifications.people.get(person)
    if found is not None and found.email:
        return found.email
    user = tx.get_user(person)
    return user.email if user is not None and not user.disabled else None


def personal_links(
    tx: Tx, engine: Engine, config: Config, notice: Notice, now: datetime
) -> list[tuple[str, str, dict[str, str]]]:
    """(person, address, links) of every approver (and escalated person) with an address.

    Approvers get approve and reject links of their own, stored (single use) and
    signed; a person told by an escalation who cannot approve gets no links.
    """
    gate, release = notice.gate or {}, notice.release or {}
    base = notice.base_url
    node = tx.get_node(int(gate["node"]))
    if node is None:
        return []
    full = tx.require_release(int(release["id"]))
    key = link_key(tx) if base else b""
    out = []
    for person in sorted(set(gate.get("approvers", [])) | set(gate.get("escalated_to", []))):
        address = address_of(tx, config, person)
        if address is None:
            continue
        links: dict[str, str] = {}
        if base and person in gate.get("approvers", []):
            values = {
                "id": secrets.token_hex(16),
                "release_id": full.id,
                "environment": notice.environment or "",
                "gate": gate["name"],
                "approver": person,
                "content_hash": content_hash(full),
                "gate_digest": gate_digest(node, notice.environment or ""),
                "created_at": now,
                "expires_at": datetime.fromisoformat(gate["expires_at"]),
            }
            tx.add_approval_link(**values)
            token = f"{values['id']}.{link_signature(key, SimpleNamespace(**values))}"
            links = {
                "approve": f"{base}/approve/{token}?decision=approve",
                "reject": f"{base}/approve/{token}?decision=reject",
            }
        out.append((person, address, links))
    return out
