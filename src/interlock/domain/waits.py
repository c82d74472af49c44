"""What a release waits on, as records: one frozen dataclass per kind of wait.

Pure: :func:`interlock.engine.waits.release_waits` finds them; the API, the CLI, the
web UI and the messages to people render them (``summary`` is the sentence,
:meth:`Wait.as_dict` the JSON). The kinds are listed in docs/waits.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar


class WaitKind(StrEnum):
    APPROVAL = "approval"
    WINDOW = "window"
    FREEZE = "freeze"
    CHECK = "check"
    LOCK = "lock"
    QUEUE = "queue"
    PAUSED = "paused"  # a deployment queued ahead waits for a person
    MANUAL = "manual"
    ATTENTION = "attention"  # a step of this release waits for a person's decision
    SCHEDULED = "scheduled"


@dataclass(frozen=True, kw_only=True)
class Wait:
    """What one part of a release waits on; subclasses add what their kind knows."""

    kind: ClassVar[WaitKind]
    release: int | None
    deployment: int | None
    environment: str | None
    summary: str
    step_id: int | None = None
    step: str | None = None
    since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON: every field, times in ISO 8601, with ``kind`` first."""
        out: dict[str, Any] = {"kind": self.kind.value}
        out.update(_json(self))
        return out

    def key(self) -> tuple[Any, ...]:
        """What identifies this wait across reads (a watcher prints each one once)."""
        return (self.kind.value, self.deployment, self.step_id)


@dataclass(frozen=True)
class Given:
    by: str
    at: datetime
    expires_at: datetime | None
    comment: str | None


@dataclass(frozen=True)
class ApprovalRule:
    rule: str
    kind: str
    group: str
    needed: int
    missing: int
    given_by: tuple[Given, ...]
    can_clear: tuple[str, ...]  # who may still give one, with the permission to


@dataclass(frozen=True, kw_only=True)
class ApprovalWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.APPROVAL
    gate: str
    rules: tuple[ApprovalRule, ...]
    expires_at: datetime | None  # the earliest expiry of the approvals given
    approvals_last: float | None  # seconds an approval counts, if they expire


@dataclass(frozen=True, kw_only=True)
class WindowWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.WINDOW
    gate: str
    opens_at: datetime | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class FreezeWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.FREEZE
    gate: str
    until: datetime | None
    reason: str | None
    set_by: str | None  # interlock.yaml, or the freeze calendar's file
    config_version: int | None  # the config (of the release) that declares it or its calendar
    loaded_by: str | None  # who loaded that config
    opens_at: datetime | None  # when the gate looks again (the window may stay closed)


@dataclass(frozen=True, kw_only=True)
class CheckWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.CHECK
    gate: str
    type: str  # check, metric or soak
    last: str | None
    tries: int
    next_try: datetime | None


@dataclass(frozen=True, kw_only=True)
class LockWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.LOCK
    by: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class QueueWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.QUEUE
    behind_deployment: int
    behind_release: int | None
    services: tuple[str, ...]
    state: str

    def key(self) -> tuple[Any, ...]:
        return (self.kind.value, self.deployment, self.behind_deployment)


@dataclass(frozen=True, kw_only=True)
class PausedWait(QueueWait):
    kind: ClassVar[WaitKind] = WaitKind.PAUSED
    paused_step_id: int | None
    paused_step: str | None


@dataclass(frozen=True, kw_only=True)
class ManualWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.MANUAL
    run: int  # the deployment or runbook run that holds the step (`runbook sign RUN STEP`)
    runbook: str | None
    instructions: str | None
    signer_kind: str  # role or team
    signer: str
    can_sign: tuple[str, ...]
    sign: str  # the command that signs it


@dataclass(frozen=True, kw_only=True)
class AttentionWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.ATTENTION
    error: str | None
    resolve: str  # the command that decides


@dataclass(frozen=True, kw_only=True)
class ScheduledWait(Wait):
    kind: ClassVar[WaitKind] = WaitKind.SCHEDULED
    starts_at: datetime | None


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value
