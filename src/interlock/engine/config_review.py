"""Config changes a second person approves before they apply (``config_changes``).

A reload whose diff holds a change the active config reviews is stored as a
pending change; the members of the approvers' role or team, never the person
who asked, approve it, and the last approval stores it as the active version.
Each step is one transaction with its audit event. :class:`~interlock.engine.
configs.Configs` calls these and keeps what it parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from interlock.domain.records import ConfigChange, ConfigVersion
from interlock.errors import Conflict, Forbidden
from interlock.spec.diff import Change
from interlock.spec.loader import LoadedConfig, parse_config
from interlock.spec.model import Config
from interlock.storage.tx import Tx

MAX_AUDITED_CHANGES = 500


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: the active version, whether it is new, what changed, and the
    pending change when the change waits for approval."""

    stored: ConfigVersion
    changed: bool
    changes: list[Change]
    pending: ConfigChange | None


@dataclass(frozen=True)
class Approvers:
    """Who approves reviewed config changes: ``count`` members of a role or a team."""

    kind: str  # "role" or "team"
    group: str
    count: int


def approvers_of(config: Config) -> Approvers | None:
    """The approvers ``config`` names (``None``: changes apply at once)."""
    rules = config.config_changes
    if rules.review == "none" or rules.approvers is None:
        return None
    if rules.approvers.role:
        return Approvers("role", rules.approvers.role, rules.approvers.count)
    return Approvers("team", rules.approvers.team or "", rules.approvers.count)


def diff_data(changes: list[Change]) -> dict[str, Any]:
    """The diff as the audit keeps it (the first ``MAX_AUDITED_CHANGES`` changes)."""
    if not changes:
        return {}
    shown = [c.to_json() for c in changes[:MAX_AUDITED_CHANGES]]
    more = len(changes) - len(shown)
    return {"diff": shown, **({"diff_more": more} if more else {})}


def request_change(
    tx: Tx,
    *,
    base_version: int,
    loaded: LoadedConfig,
    changes: list[Change],
    reviewed: list[Change],
    actor: str,
    reason: str,
    now: datetime,
) -> tuple[ConfigVersion, ConfigChange]:
    """Store a change that needs approval (the same one asked again: the one stored);
    older pending changes are superseded."""
    tx.lock_configs()
    latest = tx.require_config(base_version)
    for pending in tx.pending_config_changes():
        if pending.hash == loaded.hash and pending.base_version == latest.version:
            return latest, pending
        tx.update_config_change(pending.id, state="superseded", decided_by=actor, decided_at=now)
        tx.audit(
            at=now,
            actor=actor,
            action="config.change_superseded",
            object_type="config_change",
            object_id=pending.id,
            reason="a newer change was requested",
        )
    change_id = tx.add_config_change(
        base_version=latest.version,
        hash=loaded.hash,
        path=str(loaded.path),
        text=loaded.text,
        diff=[c.to_json() for c in changes],
        reason=reason,
        by=actor,
        at=now,
    )
    tx.audit(
        at=now,
        actor=actor,
        action="config.change_requested",
        object_type="config_change",
        object_id=change_id,
        reason=reason,
        after={"hash": loaded.hash, "base_version": latest.version},
        data={
            "path": str(loaded.path),
            "needs_approval": [c.line() for c in reviewed],
            **diff_data(changes),
        },
    )
    return latest, tx.require_config_change(change_id)


def decide_change(
    tx: Tx,
    *,
    change_id: int,
    active: Config,
    actor: str,
    approve: bool,
    comment: str,
    now: datetime,
    store: Callable[[Any, ConfigVersion, ConfigChange, Config], int],
) -> tuple[ConfigChange, tuple[ConfigVersion, Config] | None]:
    """Approve or reject a pending change by the ``active`` config's rules; the approval
    that completes it stores it with ``store`` (returned: the new version and its config)."""
    rule = approvers_of(active)
    if rule is None:
        raise Conflict(
            "the active config asks no approval for config changes "
            "(config_changes.review is none): a reload applies at once"
        )
    tx.lock_configs()
    change = tx.require_config_change(change_id, lock=True)
    if change.state != "pending":
        raise Conflict(f"config change {change_id} is {change.state}, not pending")
    kind, group, count = rule.kind, rule.group, rule.count
    verb = "approve" if approve else "reject"
    members = set(getattr(active, f"{kind}s").get(group, [])) | set(tx.members(kind, group))
    withdraw = not approve and actor == change.requested_by
    if approve and actor == change.requested_by:
        raise Forbidden(
            f"you asked for config change {change_id}: someone else must approve it (four-eyes)"
        )
    if actor not in members and not withdraw:
        raise Forbidden(f"only members of {kind} {group!r} may {verb} config changes")
    if any(a["by"] == actor for a in change.approvals):
        raise Conflict(f"you already approved config change {change_id}")
    latest = tx.latest_config()
    if latest is None or latest.version != change.base_version:
        tx.update_config_change(change_id, state="superseded", decided_by=actor, decided_at=now)
        tx.audit(
            at=now,
            actor=actor,
            action="config.change_superseded",
            object_type="config_change",
            object_id=change_id,
            reason="the active config changed since it was requested",
        )
        return tx.require_config_change(change_id), None
    if not approve:
        tx.update_config_change(change_id, state="rejected", decided_by=actor, decided_at=now)
        tx.audit(
            at=now,
            actor=actor,
            action="config.change_rejected",
            object_type="config_change",
            object_id=change_id,
            reason=comment or None,
        )
        return tx.require_config_change(change_id), None
    approvals = [
        *change.approvals,
        {"by": actor, "at": now.isoformat(), "comment": comment},
    ]
    tx.audit(
        at=now,
        actor=actor,
        action="config.change_approved",
        object_type="config_change",
        object_id=change_id,
        reason=comment or None,
        data={"approvals": len(approvals), "needed": count},
    )
    if len(approvals) < count:
        tx.update_config_change(change_id, approvals=approvals)
        return tx.require_config_change(change_id), None
    config = parse_config(change.text, Path(change.path))
    version = store(tx, latest, replace(change, approvals=approvals), config)
    tx.update_config_change(
        change_id,
        state="applied",
        approvals=approvals,
        decided_by=actor,
        decided_at=now,
        version=version,
    )
    return tx.require_config_change(change_id), (tx.require_config(version), config)
