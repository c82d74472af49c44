"""Signing in to the web UI with single sign-on, and out again (``/auth/...``).

``GET /auth/sso/login`` sends the browser to the provider (authorization code
with PKCE); ``GET /auth/sso/callback`` is where it comes back: the code is
redeemed, the ID token verified, the claims mapped to a user, roles and teams
(``sso:`` in interlock.yaml), and a session begins in an HttpOnly, SameSite=Lax
cookie (``__Host-`` and Secure over https). ``GET /auth/session`` tells the web UI
who is signed in and the CSRF token its changes must carry (``X-CSRF-Token``);
``POST /auth/signout`` ends the session. API tokens are untouched by all this.
"""

from __future__ import annotations

import html
import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from interlock.api.deps import (
    COOKIE,
    CSRF_HEADER,
    SECURE_COOKIE,
    AppDep,
    principal,
    session_secret,
    sso_config,
)
from interlock.engine.web_sessions import csrf_matches, csrf_token, signed_in
from interlock.errors import Forbidden, InterlockError, NotFound, Unauthenticated
from interlock.spec.sso import Sso
from interlock.web.routes import SECURITY_HEADERS

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# The web UI's headers (no framing, no referrer: a code or state in the URL stays here).
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}


def _safe_return(value: str | None) -> str:
    """Only a page of the web UI (or `interlock login`'s) is where a sign-in returns to."""
    if not value or "\\" in value or value.startswith(("/ui//", "/auth/cli//")):
        return "/ui/releases"
    if value.startswith(("/ui/", "/auth/cli?")):
        return value
    return "/ui/releases"


def _redirect_url(request: Request, sso: Sso) -> str:
    return sso.redirect_url or str(request.url_for("sso_callback"))


def _configured(app: AppDep) -> Sso:
    sso = sso_config(app)
    if sso is None:
        raise NotFound("single sign-on is not configured: add an `sso:` section to interlock.yaml")
    return sso


def _page(status: int, title: str, message: str) -> HTMLResponse:
    """What a person sees when a sign-in fails: why, and the way back."""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} · Interlock</title>"
        '<link rel="stylesheet" href="/ui/style.css"></head><body><main id="main">'
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="alert alert-error" role="alert" id="sso-error">{html.escape(message)}</p>'
        '<p><a href="/ui/signin">Back to sign-in</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status, headers=NO_STORE)


@router.get("/auth/providers")
def providers(app: AppDep) -> JSONResponse:
    """How one may sign in here: with an API token always, with single sign-on if configured."""
    sso = sso_config(app)
    found = None if sso is None else {"label": sso.label, "login_url": "/auth/sso/login"}
    return JSONResponse({"token": True, "sso": found}, headers=NO_STORE)


@router.get("/auth/sso/login")
def sso_login(request: Request, app: AppDep, next: str | None = None) -> Response:  # noqa: A002
    """Leave for the provider's sign-in page; come back to ``next`` (a /ui/ page)."""
    sso = _configured(app)
    redirect_url = _redirect_url(request, sso)
    provider = app.providers.of(sso)
    try:
        provider.metadata()  # before a sign-in is stored: an unreachable provider says so
    except InterlockError as exc:
        log.warning("single sign-on unavailable: %s", exc)
        return _page(exc.http_status, "Single sign-on is unavailable", str(exc))
    state, login = app.sessions.begin_sign_in(
        return_to=_safe_return(next), redirect_url=redirect_url
    )
    target = provider.authorize_url(
        redirect_url=redirect_url, state=state, nonce=login.nonce, verifier=login.verifier
    )
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


@router.get("/auth/sso/callback", name="sso_callback")
def sso_callback(
    request: Request,
    app: AppDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """The provider sends the browser back here with a code (or an error)."""
    sso = _configured(app)
    try:
        if not state:
            raise Forbidden("the provider sent no state; start again from the sign-in page")
        login = app.sessions.take_sign_in(state)
        if error:
            said = f"{error}: {error_description}" if error_description else error
            raise Forbidden(f"the provider did not sign you in ({said})")
        if not code:
            raise Forbidden("the provider sent no code; start again from the sign-in page")
        claims = app.providers.of(sso).redeem(
            code=code, redirect_url=login.redirect_url, verifier=login.verifier, nonce=login.nonce
        )
        secret, session = app.sessions.begin(signed_in(sso, claims), sso)
    except InterlockError as exc:
        log.warning("single sign-on failed: %s", exc)
        return _page(exc.http_status, "Sign-in failed", str(exc))
    response = RedirectResponse(login.return_to, status_code=303, headers=NO_STORE)
    # Over https (or behind a proxy that ends TLS, told by the https redirect URL).
    https = request.url.scheme == "https" or login.redirect_url.startswith("https://")
    response.set_cookie(
        SECURE_COOKIE if https else COOKIE,
        secret,
        max_age=max(1, int((session.expires_at - session.created_at).total_seconds())),
        path="/",
        secure=https,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/auth/session")
def current_session(request: Request, app: AppDep) -> JSONResponse:
    """Who this browser's session belongs to, and the CSRF token for its changes."""
    secret = session_secret(request)
    if secret is None or request.headers.get("authorization"):
        raise Unauthenticated("not signed in: no session cookie; sign in with single sign-on")
    who = principal(request)
    _user, session = app.sessions.authenticate(secret)
    return JSONResponse(
        {
            "name": who.name,
            "kind": who.kind,
            "roles": sorted(who.roles),
            "teams": sorted(who.teams),
            "expires_at": session.expires_at.isoformat(),
            "csrf_token": csrf_token(secret),
        },
        headers=NO_STORE,
    )


@router.post("/auth/signout")
def sign_out(request: Request, app: AppDep) -> Response:
    """End this browser's session (its CSRF token in X-CSRF-Token) and forget the cookie."""
    secret = session_secret(request)
    if secret is not None:
        if not csrf_matches(secret, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"signing out needs the session's {CSRF_HEADER} header")
        app.sessions.end(secret)
    response = Response(status_code=204, headers=NO_STORE)
    for name in (COOKIE, SECURE_COOKIE):
        if name in request.cookies:
            response.delete_cookie(
                name, path="/", secure=name == SECURE_COOKIE, httponly=True, samesite="lax"
            )
    return response
