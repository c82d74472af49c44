"""The active config, what reloading it would change, reloading it, and reviewed changes."""

from __future__ import annotations

from fastapi import APIRouter, Body, Response

from interlock.api.deps import AppDep, Id, PrincipalDep
from interlock.api.schemas import (
    ConfigChangeOut,
    ConfigDiffOut,
    ConfigOut,
    DecisionIn,
    ReloadIn,
    ReloadOut,
)
from interlock.domain.records import ConfigChange
from interlock.engine import views
from interlock.errors import InvalidInput

router = APIRouter(tags=["config"])


@router.get("/config", response_model=ConfigOut)
def get(app: AppDep, who: PrincipalDep, text: bool = True) -> ConfigOut:
    """The active config: version, hash, file, and its text."""
    app.access.require(who, "config.read")
    active = app.configs.active()
    stored = views.config_version(app.engine, active.version)
    return ConfigOut(
        version=stored.version,
        hash=stored.hash,
        path=stored.path,
        loaded_at=stored.loaded_at,
        loaded_by=stored.loaded_by,
        text=stored.text if text else None,
    )


def _config_path(app: AppDep) -> str:
    if app.config_path is None:
        raise InvalidInput("this server was started without a config file to reload")
    return str(app.config_path)


@router.get("/config/diff", response_model=ConfigDiffOut)
def diff(app: AppDep, who: PrincipalDep) -> ConfigDiffOut:
    """What a reload would change: services, environments, gates and steps added, removed or
    changed, and which of those changes need approval (an invalid file is a 422)."""
    app.access.require(who, "config.read")
    loaded, changes, reviewed = app.configs.diff_file(_config_path(app))
    try:
        version: int | None = app.configs.active().version
    except Exception:  # noqa: BLE001 - no active config yet: everything is new
        version = None
    return ConfigDiffOut(
        path=str(loaded.path),
        hash=loaded.hash,
        active_version=version,
        changes=[c.to_json() for c in changes],
        needs_approval=[c.to_json() for c in reviewed],
    )


def _change_out(app: AppDep, change: ConfigChange) -> ConfigChangeOut:
    rule = app.configs.approvers()
    return ConfigChangeOut(
        id=change.id,
        base_version=change.base_version,
        hash=change.hash,
        path=change.path,
        state=change.state,
        reason=change.reason,
        requested_by=change.requested_by,
        requested_at=change.requested_at,
        approvals=change.approvals,
        needed=rule.count if rule else None,
        decided_by=change.decided_by,
        decided_at=change.decided_at,
        version=change.version,
        diff=change.diff,
    )


@router.post(
    "/config/reload",
    response_model=ReloadOut,
    responses={
        202: {"model": ReloadOut, "description": "The change waits for approval (`pending`)."}
    },
)
def reload(
    app: AppDep,
    who: PrincipalDep,
    response: Response,
    body: ReloadIn | None = Body(default=None),  # noqa: B008 - FastAPI's way
) -> ReloadOut:
    """Load the server's config file again; an invalid file is refused, the old one stays.

    A change the active config asks approval for is stored as pending (202): it applies
    once approved (`POST /config/changes/{id}/approve`)."""
    app.access.require(who, "config.reload")
    outcome = app.configs.reload(
        _config_path(app), actor=who.name, reason=body.reason if body else ""
    )
    if outcome.pending is not None:
        response.status_code = 202
    stored = outcome.stored
    return ReloadOut(
        version=stored.version,
        hash=stored.hash,
        changed=outcome.changed,
        changes=[c.to_json() for c in outcome.changes],
        pending=_change_out(app, outcome.pending) if outcome.pending else None,
    )


@router.get("/config/changes", response_model=list[ConfigChangeOut])
def changes(app: AppDep, who: PrincipalDep) -> list[ConfigChangeOut]:
    """The latest config changes that needed approval, newest first."""
    app.access.require(who, "config.read")
    return [_change_out(app, c) for c in app.configs.changes()]


@router.get("/config/changes/{change_id}", response_model=ConfigChangeOut)
def change(app: AppDep, who: PrincipalDep, change_id: Id) -> ConfigChangeOut:
    """One config change, with its diff and approvals."""
    app.access.require(who, "config.read")
    return _change_out(app, app.configs.change(change_id))


@router.post("/config/changes/{change_id}/approve", response_model=ConfigChangeOut)
def approve(
    app: AppDep,
    who: PrincipalDep,
    change_id: Id,
    body: DecisionIn | None = Body(default=None),  # noqa: B008 - FastAPI's way
) -> ConfigChangeOut:
    """Approve a pending config change (members of `config_changes.approvers`, never the
    person who asked); with enough approvals it becomes the active config."""
    decided = app.configs.decide(
        change_id, actor=who.name, approve=True, comment=body.comment if body else ""
    )
    return _change_out(app, decided)


@router.post("/config/changes/{change_id}/reject", response_model=ConfigChangeOut)
def reject(
    app: AppDep,
    who: PrincipalDep,
    change_id: Id,
    body: DecisionIn | None = Body(default=None),  # noqa: B008 - FastAPI's way
) -> ConfigChangeOut:
    """Reject a pending config change (an approver), or withdraw it (who asked)."""
    decided = app.configs.decide(
        change_id, actor=who.name, approve=False, comment=body.comment if body else ""
    )
    return _change_out(app, decided)
