"""What the guarded updates may change: the columns of a row, by name and type.

``Tx.update_release(…, **values)`` and its kin take these as keyword
arguments, so a misspelt column or a wrong type is a type error, not a
statement that fails at run time. A state may be given as its enum or its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypedDict

from interlock.domain.states import DeploymentState, NodeState, ReleaseState

# A value stored in a JSON column (and in an audit event's before/after).
JsonValue = Mapping[str, object] | Sequence[object] | str | int | float | bool | None


class ReleaseChanges(TypedDict, total=False):
    """Columns of ``releases`` that :meth:`Tx.update_release` may set."""

    state: ReleaseState | str
    updated_at: datetime
    finished_at: datetime | None
    scheduled_at: datetime | None
    config_version: int
    environment: str | None
    error: str | None
    kind: str
    route: Sequence[str]


class DeploymentExtras(TypedDict, total=False):
    """Optional columns of ``deployments`` that :meth:`Tx.insert_deployment` may set."""

    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    cancel_requested: bool
    abort_reason: str | None
    settings: Mapping[str, object] | None
    runbook: str | None
    params: Mapping[str, object] | None
    incident_id: int | None
    parent_node_id: int | None


class DeploymentChanges(DeploymentExtras, total=False):
    """Columns of ``deployments`` that :meth:`Tx.update_deployment` may set."""

    state: DeploymentState | str
    environment: str | None
    previous: Mapping[str, object]


class NodeChanges(TypedDict, total=False):
    """Columns of ``nodes`` that :meth:`Tx.update_node` may set."""

    state: NodeState | str
    unmet: int
    spec: Mapping[str, object]
    timeout: float
    max_attempts: int
    attempt: int
    not_before: datetime | None
    lease_owner: str | None
    lease_expires: datetime | None
    fence: int
    cancel_requested: bool
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: Mapping[str, object] | None


class IncidentResolution(TypedDict, total=False):
    """Columns of ``incidents`` that :meth:`Tx.resolve_incident` sets."""

    resolved_at: datetime
    resolved_by: str
    resolution: str
    resolved_by_deployment: int | None
    resolution_note: str | None
