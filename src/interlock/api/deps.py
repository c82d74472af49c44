"""What every route gets: the engine, the config holder, and the authenticated caller."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as PathParam

from interlock.api.watch import ReleaseWatch
from interlock.domain.bounds import RecordId
from interlock.engine.access import Access
from interlock.engine.configs import Configs
from interlock.engine.core import Engine
from interlock.engine.identity import Identity, Principal
from interlock.errors import InvalidInput, NotFound


@dataclass
class AppState:
    engine: Engine
    configs: Configs
    config_path: Path | None
    identity: Identity
    access: Access
    watch: ReleaseWatch

    def readable_or_404(self, who: Principal, services: Iterable[str], what: str) -> None:
        """Hide what the caller may not read: it does not exist as far as they know."""
        if not self.access.can_read(who, services):
            raise NotFound(f"no {what}")


def state(request: Request) -> AppState:
    found: AppState = request.app.state.interlock
    return found


_PRINCIPAL = "interlock.principal"  # the request scope's key of the caller, once known


def principal(request: Request) -> Principal:
    """Authenticate the bearer token; every API call but the health checks needs one.

    Once per request: the body guard (:mod:`interlock.api.bodies`) may have done it
    before the body was read.
    """
    known: Principal | None = request.scope.get(_PRINCIPAL)
    if known is not None:
        return known
    app = state(request)
    header = request.headers.get("authorization") or ""
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    source = request.client.host if request.client else ""
    user, found = app.identity.authenticate(token, source=f"{source} {request.url.path}")
    try:
        config = app.configs.active().config
        roles, teams = config.roles, config.teams
    except NotFound:
        roles, teams = {}, {}
    caller = app.identity.principal(user, roles, teams, found.id)
    request.scope[_PRINCIPAL] = caller
    return caller


AppDep = Annotated[AppState, Depends(state)]
# Ids in paths: a number a database column can hold (larger is a 422, not a 500).
Id = Annotated[RecordId, PathParam()]
PrincipalDep = Annotated[Principal, Depends(principal)]


def _query_names(dependant: Any) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_SIGNED: set[Any] = set()


def signed(endpoint: Any) -> Any:
    """Mark an endpoint that a signature over its body may authenticate instead of a token
    (event intake): its unknown query parameters are refused before authentication."""
    _SIGNED.add(endpoint)
    return endpoint


def known_query(request: Request) -> None:
    """Refuse a query parameter the endpoint does not take (422 naming it).

    Ignoring it would answer a different question than the one asked: a
    `?by=ann` meant as `?created_by=ann` would list everyone's releases.
    """
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if not request.query_params or dependant is None:
        return
    known = sorted(_query_names(dependant))
    unknown = next((name for name in request.query_params if name not in known), None)
    if unknown is None:
        return
    if getattr(route, "endpoint", None) not in _SIGNED:
        principal(request)  # who may not call it at all hears 401 first, as everywhere
    close = difflib.get_close_matches(unknown, known, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    else:
        hint = f"it takes {', '.join(known) or 'none'}"
    raise InvalidInput(
        f"unknown query parameter {unknown!r} for {request.method} {request.url.path}; {hint}",
        field=unknown,
    )
