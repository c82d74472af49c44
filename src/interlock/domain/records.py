"""Records as the engine and the API see them: frozen, typed, no database in sight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from interlock.domain.plan import EnvironmentSettings, ReleasePlan
from interlock.domain.states import DeploymentState, NodeState, ReleaseState


@dataclass(frozen=True)
class ConfigVersion:
    version: int
    hash: str
    path: str
    text: str
    loaded_at: datetime
    loaded_by: str


@dataclass(frozen=True)
class ConfigChange:
    """A reload waiting for approval: the config it would store and its diff."""

    id: int
    base_version: int
    hash: str
    path: str
    text: str
    diff: list[dict[str, Any]]
    reason: str
    requested_by: str
    requested_at: datetime
    state: str  # pending, applied, rejected, superseded
    approvals: list[dict[str, Any]]
    decided_by: str | None
    decided_at: datetime | None
    version: int | None


@dataclass(frozen=True)
class Item:
    service: str
    version: str
    digest: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class Release:
    id: int
    reason: str
    created_by: str
    created_at: datetime
    state: ReleaseState
    updated_at: datetime
    finished_at: datetime | None
    scheduled_at: datetime | None
    config_version: int
    plan: dict[str, Any]
    environment: str | None
    error: str | None
    revision: int
    on_behalf_of: str | None = None
    kind: str = "deploy"  # or rollback
    items: tuple[Item, ...] = ()
    route: tuple[str, ...] = ()  # its environments in order (the plan's, without the plan)

    @cached_property
    def planned(self) -> ReleasePlan:
        """Its plan, typed (``plan`` is the JSON it is stored as); read with ``plan=True``."""
        if not self.plan:
            raise ValueError(f"release {self.id} was read without its plan")
        return ReleasePlan.from_json(self.plan)

    def authors(self) -> set[str]:
        """Whoever made this release: they never count as its approvers."""
        return {self.created_by} | ({self.on_behalf_of} if self.on_behalf_of else set())

    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True)
class Deployment:
    id: int
    release_id: int | None
    kind: str
    environment: str | None
    env_index: int
    state: DeploymentState
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    previous: dict[str, Any]
    cancel_requested: bool
    abort_reason: str | None = None
    settings: dict[str, Any] | None = None
    runbook: str | None = None
    params: dict[str, Any] | None = None
    incident_id: int | None = None
    parent_node_id: int | None = None

    @cached_property
    def rules(self) -> EnvironmentSettings:
        """Its environment's rules, typed (``settings`` is the JSON they are stored as)."""
        known = _RULES.get(self.id)
        if known is not None and known[0] == self.settings:
            return known[1]
        rules = EnvironmentSettings.from_json(self.settings)
        if len(_RULES) >= 1024:
            _RULES.clear()
        _RULES[self.id] = (self.settings, rules)
        return rules


# The rules of the deployments read last, by id, with the settings they were read from.
# A worker reads its deployment again at every step, and its settings never change;
# the settings are compared, not trusted (another database in this process may have a
# deployment of the same id).
_RULES: dict[int, tuple[dict[str, Any] | None, EnvironmentSettings]] = {}


@dataclass(frozen=True)
class Node:
    id: int
    deployment_id: int
    key: str
    kind: str
    service: str | None
    name: str
    phase: str
    position: int
    needs: tuple[str, ...]
    unmet: int
    dependents: tuple[str, ...]
    executor: str
    spec: dict[str, Any]
    timeout: float
    max_attempts: int
    backoff: float
    idempotent: bool
    state: NodeState
    attempt: int
    not_before: datetime | None
    lease_owner: str | None
    lease_expires: datetime | None
    fence: int
    cancel_requested: bool
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    result: dict[str, Any] | None = field(default=None)

    def idempotency_key(self, attempt: int | None = None) -> str:
        """``(deployment, step, attempt)`` as one string, handed to the step."""
        return f"{self.deployment_id}:{self.key}:{attempt if attempt is not None else self.attempt}"

    def retries_left(self) -> bool:
        return self.attempt < self.max_attempts


@dataclass(frozen=True)
class Attempt:
    id: int
    node_id: int
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    exit_code: int | None
    error: str | None
    log_size: int
    log_truncated: bool


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    body: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class InventoryEntry:
    service: str
    environment: str
    version: str
    digest: str | None
    release_id: int | None
    deployment_id: int | None
    deployed_at: datetime
    deployed_by: str


@dataclass(frozen=True)
class User:
    id: int
    name: str
    kind: str  # user | service
    display_name: str | None
    email: str | None
    disabled: bool
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Token:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class Approval:
    id: int
    release_id: int
    environment: str
    gate: str
    approver: str
    decision: str  # approve | reject
    comment: str | None
    content_hash: str
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Override:
    id: int
    release_id: int
    environment: str
    gate: str
    actor: str
    reason: str
    created_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_comment: str | None


@dataclass(frozen=True)
class EnvironmentLock:
    environment: str
    locked_by: str
    reason: str
    locked_at: datetime


@dataclass(frozen=True)
class Artifact:
    """One build of a service, registered by CI; immutable once registered."""

    id: int
    service: str
    version: str
    digest: str | None
    commit_sha: str | None
    repo: str | None
    build_url: str | None
    committed_at: datetime | None
    registered_at: datetime
    registered_by: str
    blocked_at: datetime | None
    blocked_by: str | None
    block_reason: str | None

    def blocked(self) -> bool:
        return self.blocked_at is not None


@dataclass(frozen=True)
class Incident:
    id: int
    service: str | None
    environment: str
    summary: str
    state: str  # open | resolved
    opened_at: datetime
    opened_by: str
    deployment_id: int | None
    release_id: int | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None  # manual | rollback | fix
    resolved_by_deployment: int | None
    resolution_note: str | None


@dataclass(frozen=True)
class Observation:
    service: str
    environment: str
    version: str
    observed_at: datetime
    observed_by: str


@dataclass(frozen=True)
class Signoff:
    id: int
    node_id: int
    signer: str
    comment: str | None
    signed_at: datetime


@dataclass(frozen=True)
class WebSession:
    """A person's browser session, begun by signing in with single sign-on."""

    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class SsoLogin:
    """A sign-in under way at the provider, found again by its state when it returns."""

    nonce: str
    verifier: str
    return_to: str
    redirect_url: str
    expires_at: datetime


@dataclass(frozen=True)
class CliGrant:
    """A person allowed ``interlock login``: the code's user, PKCE challenge and token name."""

    user_id: int
    challenge: str
    token_name: str
    expires_at: datetime
