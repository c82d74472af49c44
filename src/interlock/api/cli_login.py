"""``interlock login``: the command line signs in through the browser (single sign-on).

The command listens on 127.0.0.1, opens ``/auth/cli`` with its port, a state
and the S256 challenge of a secret verifier. A person signed in with single
sign-on (sent to sign in first otherwise) sees whom the command will act as and
presses Allow (a form with the session's CSRF token); the browser is sent back
to the command's port with a one-time code, which the command trades, with its
verifier, for an API token of that person (``POST /auth/cli/token``). The token
never passes through the browser, and a code without the verifier is worthless.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from interlock.api.deps import AppDep, session_secret, sso_config
from interlock.engine.web_sessions import csrf_matches, csrf_token
from interlock.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from interlock.web.routes import SECURITY_HEADERS

router = APIRouter(include_in_schema=False)

TOKEN_LIFETIME = timedelta(days=30)
STATE = re.compile(r"\A[A-Za-z0-9_-]{16,128}\Z")
CHALLENGE = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")
TOKEN_NAME = re.compile(r"\A[A-Za-z0-9 ._@-]{1,64}\Z")
NO_STORE = {**SECURITY_HEADERS, "Cache-Control": "no-store"}


def _request(
    port: str | None, state: str | None, challenge: str | None, name: str | None
) -> dict[str, str]:
    """The command's request, checked: each wrong part named."""
    if not port or not port.isdigit() or not 1024 <= int(port) <= 65535:
        raise InvalidInput("port is the command's port on 127.0.0.1 (1024-65535)", field="port")
    if not state or not STATE.match(state):
        raise InvalidInput("state is 16-128 characters of A-Z a-z 0-9 _ -", field="state")
    if not challenge or not CHALLENGE.match(challenge):
        raise InvalidInput(
            "challenge is the S256 of the verifier (43 characters)", field="challenge"
        )
    name = name or "interlock login"
    if not TOKEN_NAME.match(name):
        raise InvalidInput("name is 1-64 letters, digits, spaces, '.', '_', '@', '-'", field="name")
    return {"port": port, "state": state, "challenge": challenge, "name": name}


def _configured(app: AppDep) -> None:
    if sso_config(app) is None:
        raise NotFound(
            "`interlock login` needs single sign-on (`sso:` in interlock.yaml); "
            "without it, create a token with `interlock token create`"
        )


def _consent(asked: dict[str, str], who: str, csrf: str) -> HTMLResponse:
    fields = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
        for k, v in {**asked, "csrf_token": csrf}.items()
    )
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Allow the command line · Interlock</title>"
        '<link rel="stylesheet" href="/ui/style.css"></head><body><main id="main">'
        "<h1>Allow the command line?</h1>"
        f"<p>The <code>interlock</code> command on this computer asks for an API token to act as "
        f'<strong id="cli-user">{html.escape(who)}</strong> for 30 days, named '
        f"<code>{html.escape(asked['name'])}</code>. Allow it only if you just ran "
        "<code>interlock login</code>.</p>"
        f'<form method="post" action="/auth/cli">{fields}'
        '<button type="submit" class="primary" name="decision" value="allow">Allow</button> '
        '<button type="submit" name="decision" value="deny">Cancel</button></form>'
        "</main></body></html>"
    )
    # The form's answer sends the browser on to the command's port, and nowhere else.
    policy = (
        "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action 'self' http://127.0.0.1:{asked['port']}"
    )
    return HTMLResponse(body, headers={**NO_STORE, "Content-Security-Policy": policy})


@router.get("/auth/cli")
def cli_consent(
    request: Request,
    app: AppDep,
    port: str | None = None,
    state: str | None = None,
    challenge: str | None = None,
    name: str | None = None,
) -> Response:
    """Ask the signed-in person whether the command may act as them (sign in first)."""
    _configured(app)
    asked = _request(port, state, challenge, name)
    secret = session_secret(request)
    user = None
    if secret is not None:
        try:
            user, _ = app.sessions.authenticate(secret)
        except Unauthenticated:  # an ended or expired session: sign in again
            user = None
    if user is None or secret is None:
        back = f"/auth/cli?{urlencode(asked)}"
        return RedirectResponse(
            f"/auth/sso/login?next={quote(back, safe='')}", status_code=303, headers=NO_STORE
        )
    return _consent(asked, user.name, csrf_token(secret))


@router.post("/auth/cli")
async def cli_allow(request: Request, app: AppDep) -> Response:
    """The person's answer: a one-time code to the command's port, or nothing."""
    _configured(app)
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    asked = _request(form.get("port"), form.get("state"), form.get("challenge"), form.get("name"))
    secret = session_secret(request)
    if secret is None or not csrf_matches(secret, form.get("csrf_token")):
        raise Forbidden("allowing the command line needs the form of /auth/cli, signed in")
    target = f"http://127.0.0.1:{asked['port']}/callback"
    if form.get("decision") != "allow":
        query = urlencode({"state": asked["state"], "error": "access_denied"})
        return RedirectResponse(f"{target}?{query}", status_code=303, headers=NO_STORE)
    code = app.sessions.grant_cli(secret, challenge=asked["challenge"], token_name=asked["name"])
    query = urlencode({"state": asked["state"], "code": code})
    return RedirectResponse(f"{target}?{query}", status_code=303, headers=NO_STORE)


class TokenRequest(BaseModel):
    code: str = Field(min_length=1, max_length=128)
    verifier: str = Field(min_length=43, max_length=128)


@router.post("/auth/cli/token")
def cli_token(body: TokenRequest, app: AppDep) -> JSONResponse:
    """Trade the code and the verifier for an API token of the person who allowed it."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    _configured(app)
    challenge = create_s256_code_challenge(body.verifier)  # type: ignore[no-untyped-call]
    user, name = app.sessions.take_cli_grant(body.code, challenge)
    token, secret = app.identity.create_token(
        actor=user.name, user=user.name, name=name, expires_in=TOKEN_LIFETIME.total_seconds()
    )
    return JSONResponse(
        {
            "token": secret,
            "user": user.name,
            "token_id": token.id,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
        headers=NO_STORE,
    )
