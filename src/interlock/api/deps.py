"""What every route gets: the engine, the config holder, and the authenticated caller."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as PathParam

from interlock.api.oidc import Providers
from interlock.api.watch import ReleaseWatch
from interlock.domain.bounds import RecordId
from interlock.engine.access import Access
from interlock.engine.configs import Configs
from interlock.engine.core import Engine
from interlock.engine.identity import Identity, Principal
from interlock.engine.web_sessions import WebSessions, csrf_matches
from interlock.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from interlock.spec.sso import Sso


@dataclass
class AppState:
    engine: Engine
    configs: Configs
    config_path: Path | None
    identity: Identity
    access: Access
    watch: ReleaseWatch
    sessions: WebSessions
    providers: Providers

    def readable_or_404(self, who: Principal, services: Iterable[str], what: str) -> None:
        """Hide what the caller may not read: it does not exist as far as they know."""
        if not self.access.can_read(who, services):
            raise NotFound(f"no {what}")


def state(request: Request) -> AppState:
    found: AppState = request.app.state.interlock
    return found


_PRINCIPAL = "interlock.principal"  # the request scope's key of the caller, once known


# The browser session's cookie (api/sso.py sets it): over https with the __Host- prefix.
COOKIE = "interlock_session"
SECURE_COOKIE = "__Host-interlock_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def sso_config(app: AppState) -> Sso | None:
    """The active config's ``sso:`` section, if it has one."""
    try:
        return app.configs.active().config.sso
    except NotFound:
        return None


def session_secret(request: Request) -> str | None:
    """The secret of the browser session's cookie, if the request carries one."""
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE) or None


def _config_groups(app: AppState) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    try:
        config = app.configs.active().config
    except NotFound:
        return {}, {}
    return config.roles, config.teams


def _session_principal(request: Request, app: AppState, secret: str) -> Principal:
    if sso_config(app) is None:
        raise Unauthenticated(
            "authentication failed: single sign-on is not configured (no `sso:` in the active "
            "config), so a session cookie counts for nothing; send an API token"
        )
    user, _session = app.sessions.authenticate(secret)
    if request.method not in SAFE_METHODS and not csrf_matches(
        secret, request.headers.get(CSRF_HEADER)
    ):
        # A form or script of another site can make the browser send the cookie,
        # never this header: without it, the change did not come from the web UI.
        raise Forbidden(
            f"a change from a signed-in browser needs the session's CSRF token in the "
            f"{CSRF_HEADER} header (GET /auth/session gives it)"
        )
    roles, teams = _config_groups(app)
    return app.identity.principal(user, roles, teams)


def principal(request: Request) -> Principal:
    """Authenticate the caller; every API call but the health checks needs it.

    A bearer token (CLI, CI, scripts), or else the session cookie of a person
    signed in with single sign-on, whose changes carry the CSRF header.
    Once per request: the body guard (:mod:`interlock.api.bodies`) may have done it
    before the body was read.
    """
    known: Principal | None = request.scope.get(_PRINCIPAL)
    if known is not None:
        return known
    app = state(request)
    header = request.headers.get("authorization") or ""
    secret = session_secret(request)
    if not header and secret is not None:
        caller = _session_principal(request, app, secret)
        request.scope[_PRINCIPAL] = caller
        return caller
    scheme, _, token_text = header.partition(" ")
    token = token_text.strip() if scheme.lower() == "bearer" else None
    source = request.client.host if request.client else ""
    user, found = app.identity.authenticate(token, source=f"{source} {request.url.path}")
    roles, teams = _config_groups(app)
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
