"""The active config and reloading it."""

from __future__ import annotations

from fastapi import APIRouter

from interlock.api.deps import AppDep, PrincipalDep
from interlock.api.schemas import ConfigOut, ReloadOut
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


@router.post("/config/reload", response_model=ReloadOut)
def reload(app: AppDep, who: PrincipalDep) -> ReloadOut:
    """Load the server's config file again; an invalid file is refused, the old one stays."""
    app.access.require(who, "config.reload")
    if app.config_path is None:
        raise InvalidInput("this server was started without a config file to reload")
    stored, changed = app.configs.load_file(app.config_path, actor=who.name)
    return ReloadOut(version=stored.version, hash=stored.hash, changed=changed)
