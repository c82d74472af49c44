"""Request and response bodies of the API (they make the OpenAPI document)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from interlock.api.text import Line, Text
from interlock.domain.names import (
    check_commit,
    check_digest,
    check_service_name,
    check_version,
    parse_ref,
)
from interlock.domain.records import Attempt, AuditEvent, Deployment, Node, Release
from interlock.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: int | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null at the end."
    )


def _checked(check: Callable[[str], str], value: str) -> str:
    """Run a name check inside a model, so a 422 names the field where it stands."""
    try:
        return check(value)
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Line
    version: Line
    digest: Line | None = None
    commit: Line | None = None

    @field_validator("service", "version", "digest", "commit")
    @classmethod
    def _valid(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _checked(_ITEM_CHECKS[info.field_name or ""], value)


_ITEM_CHECKS: dict[str, Callable[[str], str]] = {
    "service": check_service_name,
    "version": check_version,
    "digest": check_digest,
    "commit": check_commit,
}


class ReleaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    services: list[Line] = Field(
        default_factory=list, description="SERVICE@VERSION entries, e.g. api@1.4.2."
    )
    items: list[ItemIn] = Field(
        default_factory=list, description="The same as `services`, with digests and commits."
    )
    reason: Text = Field(min_length=1, max_length=4000, description="Why: a ticket, a sentence.")
    until: Line | None = Field(default=None, description="Stop after this environment.")
    start: Line | None = Field(
        default=None,
        alias="from",
        description="Start at this environment; its artifacts must have succeeded in the "
        "one before it (promotion).",
    )
    on_behalf_of: Line | None = Field(
        default=None,
        description="For service accounts (CI): the person this release is for. They count "
        "as an author and cannot approve it.",
    )
    at: datetime | None = Field(default=None, description="Start at this time (scheduled).")

    @field_validator("services")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for n, ref in enumerate(value):
            try:
                parse_ref(ref)
            except InvalidInput as exc:
                raise InvalidInput(exc.detail, field=f"services[{n}]") from None
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-12-01T10:00:00Z")
        return value


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(default="cancelled", max_length=4000)


class ItemOut(BaseModel):
    service: str
    version: str
    digest: str | None
    commit: str | None


class AttemptOut(BaseModel):
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    exit_code: int | None
    error: str | None
    log_size: int
    log_truncated: bool

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(**{k: getattr(attempt, k) for k in cls.model_fields})


class StepOut(BaseModel):
    id: int
    deployment_id: int
    key: str
    kind: str
    service: str | None
    name: str
    phase: str
    executor: str
    state: str
    attempt: int
    max_attempts: int
    idempotent: bool
    timeout: float
    needs: list[str]
    not_before: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    idempotency_key: str | None
    attempts: list[AttemptOut] = Field(default_factory=list)
    detail: dict[str, Any] | None = None

    @classmethod
    def of(cls, node: Node, attempts: list[Attempt] | None = None) -> StepOut:
        return cls(
            id=node.id,
            deployment_id=node.deployment_id,
            key=node.key,
            kind=node.kind,
            service=node.service,
            name=node.name,
            phase=node.phase,
            executor=node.executor,
            state=node.state.value,
            attempt=node.attempt,
            max_attempts=node.max_attempts,
            idempotent=node.idempotent,
            timeout=node.timeout,
            needs=list(node.needs),
            not_before=node.not_before,
            started_at=node.started_at,
            finished_at=node.finished_at,
            error=node.error,
            idempotency_key=node.idempotency_key() if node.attempt else None,
            attempts=[AttemptOut.of(a) for a in attempts or []],
            detail=node.result,
        )


class DeploymentOut(BaseModel):
    id: int
    release_id: int | None
    kind: str
    environment: str | None
    state: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    previous: dict[str, Any]
    steps: list[StepOut] = Field(default_factory=list)
    services: dict[str, str] = Field(
        default_factory=dict,
        description="Where each service stands: deployed, rolled_back, failed, not_started…",
    )

    @classmethod
    def of(cls, deployment: Deployment, steps: list[StepOut] | None = None) -> DeploymentOut:
        return cls(
            id=deployment.id,
            release_id=deployment.release_id,
            kind=deployment.kind,
            environment=deployment.environment,
            state=deployment.state.value,
            created_by=deployment.created_by,
            created_at=deployment.created_at,
            started_at=deployment.started_at,
            finished_at=deployment.finished_at,
            error=deployment.error,
            previous=deployment.previous,
            steps=steps or [],
        )


class Progress(BaseModel):
    steps_done: int
    steps_total: int
    environments_done: int
    environments_total: int


class ReleaseOut(BaseModel):
    id: int
    state: str
    reason: str
    created_by: str
    on_behalf_of: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    scheduled_at: datetime | None
    config_version: int
    environment: str | None
    environments: list[str]
    error: str | None
    revision: int
    items: list[ItemOut]
    deployments: list[DeploymentOut] = Field(default_factory=list)
    progress: Progress | None = None
    waiting_on: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Every open gate: what it waits for, who can clear it, what was given.",
    )
    waits: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Everything the release waits on now, one entry per wait; `kind` is "
        "approval, window, freeze, check, lock, queue, paused, manual, attention or "
        "scheduled, `summary` says it in a sentence, and each kind adds what a person "
        "needs to act (docs/waits.md).",
    )
    queued_behind: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Why a queued deployment has not started: the environment's lock, or "
        "each deployment ahead of it that holds one of its services (and its state); "
        "`detail` says it in a sentence.",
    )

    @classmethod
    def of(cls, release: Release, deployments: list[DeploymentOut] | None = None) -> ReleaseOut:
        return cls(
            id=release.id,
            state=release.state.value,
            reason=release.reason,
            created_by=release.created_by,
            on_behalf_of=release.on_behalf_of,
            created_at=release.created_at,
            updated_at=release.updated_at,
            finished_at=release.finished_at,
            scheduled_at=release.scheduled_at,
            config_version=release.config_version,
            environment=release.environment,
            environments=list(release.route),
            error=release.error,
            revision=release.revision,
            items=[ItemOut(**i.__dict__) for i in release.items],
            deployments=deployments or [],
        )


class LogOut(BaseModel):
    step_id: int
    key: str
    attempt: int
    text: str
    next_offset: int
    finished: bool
    truncated: bool


class StatusEntry(BaseModel):
    service: str
    environment: str
    version: str
    digest: str | None
    release_id: int | None
    deployment_id: int | None
    deployed_at: datetime
    deployed_by: str
    observed_version: str | None = None
    observed_at: datetime | None = None
    drift: bool = Field(
        default=False, description="What was observed running differs from what was deployed."
    )


class StatusOut(BaseModel):
    environments: list[str]
    services: list[str]
    entries: list[StatusEntry]


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    reason: str | None
    before: Any = None
    after: Any = None
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        body = json.loads(event.body)
        return cls(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            reason=body.get("reason"),
            before=body.get("before"),
            after=body.get("after"),
            data=body.get("data") or {},
            prev_hash=event.prev_hash,
            hash=event.hash,
        )


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    count: int
    checkpoint: str = Field(description="SEQ:HASH, to keep outside the database.")


class PublishedOut(BaseModel):
    """A checkpoint published outside the database, and where."""

    seq: int
    hash: str
    checkpoint: str = Field(description="SEQ:HASH.")
    at: datetime
    instance: str = Field(description="The server or worker that published it.")
    file: str = Field(description="The checkpoint file, on the publishing server.")
    line: int


class VerifyOut(BaseModel):
    ok: bool
    count: int
    head: CheckpointOut | None
    problems: list[dict[str, Any]]
    published: PublishedOut | None = Field(
        default=None,
        description="The newest published checkpoint the chain was checked against, if any.",
    )


class ConfigOut(BaseModel):
    version: int
    hash: str
    path: str
    loaded_at: datetime
    loaded_by: str
    text: str | None = None


class ConfigChangeOut(BaseModel):
    """A config change waiting for approval (or decided)."""

    id: int
    base_version: int
    hash: str
    path: str
    state: str
    reason: str
    requested_by: str
    requested_at: datetime
    approvals: list[dict[str, Any]]
    needed: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    version: int | None = None
    diff: list[dict[str, Any]]


class ConfigDiffOut(BaseModel):
    path: str
    hash: str
    active_version: int | None
    changes: list[dict[str, Any]]
    needs_approval: list[dict[str, Any]]


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000, description="Why: kept in the audit.")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=2000)


class ReloadOut(BaseModel):
    version: int
    hash: str
    changed: bool
    changes: list[dict[str, Any]] = Field(default_factory=list)
    pending: ConfigChangeOut | None = None
