"""The inventory: which version of each service runs in each environment.

A policy of the lifecycle: it records a service deployed and says so; the
lifecycle (:mod:`interlock.engine.progress`) decides what follows (the
incidents that deployment resolves).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.domain.records import Deployment, InventoryEntry, Node, Release
from interlock.engine.core import SYSTEM_ACTOR
from interlock.storage.tx import Tx


def record_deployed(
    tx: Tx, node: Node, deployment: Deployment, *, at: datetime, release: Release | None = None
) -> tuple[Release, str] | None:
    """Record in the inventory that ``node``'s service now runs its new version.

    Acts once every deploy step of that service in the deployment is done, and
    returns the release and service it recorded (``None`` if not yet). ``release``
    is the deployment's release if the caller holds it (its items, id, author and
    kind are what is read; they never change), else it is read.
    """
    if node.service is None or node.phase != "deploy" or deployment.release_id is None:
        return None
    if any(key.startswith(f"{node.service}/") for key in node.dependents):
        return None  # a later step of the same service is still to come
    if tx.open_service_nodes(node.deployment_id, node.service, "deploy"):
        return None
    if release is None or release.id != deployment.release_id:
        release = tx.require_release_of(deployment, plan=False)
    item = next(i for i in release.items if i.service == node.service)
    entry = InventoryEntry(
        service=item.service,
        environment=deployment.environment or "",
        version=item.version,
        digest=item.digest,
        release_id=release.id,
        deployment_id=deployment.id,
        deployed_at=at,
        deployed_by=release.created_by,
    )
    data = {"release": release.id, "deployment": deployment.id, "kind": release.kind}
    set_running(tx, entry, action="service.deployed", data=data, at=at)
    return release, item.service


def set_running(
    tx: Tx, entry: InventoryEntry, *, action: str, data: dict[str, Any], at: datetime
) -> None:
    """Record that ``entry``'s version runs in its environment now, audited as ``action``."""
    before = tx.set_inventory(entry)
    tx.audit(
        at=at,
        actor=SYSTEM_ACTOR,
        action=action,
        object_type="service",
        object_id=f"{entry.service}@{entry.environment}",
        before={"version": before.version, "digest": before.digest} if before else None,
        after={"version": entry.version, "digest": entry.digest},
        data=data,
    )
