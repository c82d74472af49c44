"""What every route gets: the engine, the config holder, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from interlock.engine.configs import Configs
from interlock.engine.core import Engine


@dataclass
class AppState:
    engine: Engine
    configs: Configs
    config_path: Path | None


@dataclass(frozen=True)
class Actor:
    """The caller, as authenticated (``name`` is what the audit log records)."""

    name: str


def state(request: Request) -> AppState:
    found: AppState = request.app.state.interlock
    return found


def actor(request: Request) -> Actor:
    return Actor(name="local")


AppDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[Actor, Depends(actor)]
