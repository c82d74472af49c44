"""``interlock login``: sign the command line in through the browser (single sign-on).

The command listens on 127.0.0.1 (a free port), sends the browser to the
server's ``/auth/cli`` with a state and the S256 challenge of a verifier only
it knows, waits for the browser to come back with a one-time code, and trades
code and verifier for an API token of the person who allowed it. The token is
kept in ``INTERLOCK_HOME/login.json`` (mode 0600) with the server's address; the
CLI uses it for that server when ``INTERLOCK_TOKEN`` is unset.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import click
import httpx

from interlock import errors
from interlock.cli.client import login_path, server_url

PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Interlock</title>"
    "<body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
)


class LoginTimedOut(errors.InterlockError):
    exit_code = errors.EXIT_TIMEOUT
    kind = "timeout"
    title = "Timed out"


def _save(url: str, answer: dict[str, Any]) -> Path:
    path = login_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"url": url, "user": answer["user"], "token": answer["token"]}
    body["token_id"] = answer.get("token_id")
    body["expires_at"] = answer.get("expires_at")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(body, out)
    os.chmod(path, 0o600)
    return path


class _Callback(BaseHTTPRequestHandler):
    """The browser's return to the command: ``/callback?state=…&code=…`` (or ``error=``)."""

    found: dict[str, str] | None = None
    state = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/callback" or query.get("state") != self.state:
            self._answer(404, "Not this", "This is not the sign-in the command waits for.")
            return
        type(self).found = query
        if "code" in query:
            self._answer(200, "Signed in", "The command line is signed in; close this tab.")
        else:
            self._answer(200, "Not signed in", "You did not allow the command line.")

    def _answer(self, status: int, title: str, text: str) -> None:
        body = PAGE.format(title=title, text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # the code is in the request line: never print it


@click.command("login")
@click.option("--name", default="interlock login", show_default=True, help="The token's name.")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.option(
    "--wait",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the browser.",
)
def login(name: str, no_browser: bool, wait: float) -> None:
    """Sign in through the browser with single sign-on; keep an API token for this server."""
    url = server_url()
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    class handler(_Callback):  # noqa: N801 - this command's own callback
        state = secrets.token_urlsafe(24)
        found = None

    listener = HTTPServer(("127.0.0.1", 0), handler)
    port = listener.server_address[1]
    query = {"port": port, "state": handler.state, "challenge": challenge, "name": name}
    link = f"{url}/auth/cli?{urlencode(query)}"
    click.echo(f"Sign in at: {link}")
    if not no_browser:
        threading.Thread(target=webbrowser.open, args=(link,), daemon=True).start()
    listener.timeout = 1.0
    try:
        for _ in range(int(wait)):
            listener.handle_request()
            if handler.found is not None:
                break
    finally:
        listener.server_close()
    answer = handler.found
    if answer is None:
        raise LoginTimedOut(f"no sign-in came back within {wait:g}s; run `interlock login` again")
    if "code" not in answer:
        raise errors.Forbidden(f"not signed in: {answer.get('error', 'no code')}")
    try:
        response = httpx.post(
            f"{url}/auth/cli/token",
            json={"code": answer["code"], "verifier": verifier},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise errors.Unreachable(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        raise errors.Unauthenticated(
            f"the server refused the login: {detail or response.status_code}"
        )
    found = response.json()
    path = _save(url, found)
    click.echo(f"Signed in to {url} as {found['user']}; the token is in {path}.")


@click.command("logout")
def logout() -> None:
    """Revoke the token `interlock login` kept for this server, and forget it."""
    url = server_url()
    path = login_path()
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = None
    if not isinstance(kept, dict) or kept.get("url") != url:
        click.echo(f"Not signed in to {url} with `interlock login`; nothing to do.")
        return
    token_id = kept.get("token_id")
    if isinstance(token_id, int):
        try:
            answer = httpx.delete(
                f"{url}/api/v1/tokens/{token_id}",
                headers={"Authorization": f"Bearer {kept.get('token')}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise errors.Unreachable(
                f"cannot reach {url} to revoke the token ({exc}); it stays in {path}"
            ) from None
        # 401: the token was revoked or expired already; gone either way.
        if answer.status_code not in (200, 401):
            raise errors.InterlockError(
                f"the server did not revoke token {token_id} ({answer.status_code}); "
                f"it stays in {path}"
            )
    path.unlink()
    click.echo(f"Signed out of {url}; token {token_id} revoked.")
