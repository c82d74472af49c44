"""The CLI's HTTP client: one place that maps transport and HTTP errors to InterlockError."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from interlock import SERVER_HEADER, errors
from interlock.cli.settings import DEFAULT_URL, home

STATUS_ERRORS: dict[int, type[errors.InterlockError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.InvalidInput,
}


F = TypeVar("F", bound=Callable[..., Any])

# A call answers when its whole work is done: verifying, exporting or gathering
# evidence of a log of millions of events takes minutes (about 30 s a million).
LONG_CALL_SECONDS = 3600.0


def timeout_option(command: F) -> F:
    """``--timeout SECONDS`` for a long call (an hour by default, 0: no limit)."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=LONG_CALL_SECONDS,
        show_default=True,
        metavar="SECONDS",
        help="Give up when the server has not answered in this long (0: wait however long).",
    )(command)


def server_url() -> str:
    return (os.environ.get("INTERLOCK_URL") or DEFAULT_URL).rstrip("/")


def token() -> str | None:
    """INTERLOCK_TOKEN, the token `interlock login` kept for this server, or the local
    admin token a pilot server wrote in INTERLOCK_HOME."""
    found = os.environ.get("INTERLOCK_TOKEN")
    if found:
        return found.strip()
    saved = saved_token(server_url())
    if saved:
        return saved
    path = home() / "admin.token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def login_path() -> Path:
    """Where `interlock login` keeps its token (with the server's address)."""
    return home() / "login.json"


def saved_token(url: str) -> str | None:
    """The token `interlock login` kept for the server at ``url``, if any."""
    try:
        found = json.loads(login_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or found.get("url") != url.rstrip("/"):
        return None
    token = found.get("token")
    return token if isinstance(token, str) and token else None


def _verify(url: str) -> ssl.SSLContext | bool:
    """TLS verification for the server at ``url``: httpx's default for https://.

    For http:// no certificate is ever checked, so the CA bundle is not loaded
    (30-100 ms a call): a context that trusts no one is enough, and would refuse
    any https:// address it were sent to.
    """
    if url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, against no CA
    return True


class Client:
    def __init__(
        self, url: str | None = None, timeout: float = 30.0, *, long_call: bool = False
    ) -> None:
        """A client of the server; ``long_call``: ``timeout`` came from ``--timeout`` (0: none)."""
        self.url = (url or server_url()).rstrip("/")
        self.timeout = timeout
        self.long_call = long_call
        headers = {"user-agent": "interlock-cli"}
        secret = token()
        if secret:
            headers["authorization"] = f"Bearer {secret}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout if timeout > 0 else None,
            verify=_verify(self.url),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise errors.Unreachable(
                f"cannot reach the Interlock server at {self.url}: nothing is listening. "
                "Start one with `interlock server` (in the directory of your interlock.yaml), "
                "or point INTERLOCK_URL at a running one."
            ) from None
        except httpx.TimeoutException:
            more = "; give it longer with --timeout" if self.long_call else ""
            raise errors.Unreachable(
                f"the Interlock server at {self.url} did not answer in time "
                f"(within {self.timeout:g} s){more}"
            ) from None
        except httpx.HTTPError as exc:
            raise errors.Unreachable(f"cannot talk to {self.url}: {exc}") from None
        if response.status_code >= 400:
            if response.status_code < 500 and SERVER_HEADER not in response.headers:
                raise self._foreign()  # another service's 404 or 401 is not ours
            raise self._error(response)
        return response

    def _foreign(self) -> errors.Unreachable:
        return errors.Unreachable(
            f"{self.url} answered, but not as an Interlock server does; check INTERLOCK_URL"
        )

    def _error(self, response: httpx.Response) -> errors.InterlockError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str) or not detail:
            detail = f"the server answered {response.status_code} {response.reason_phrase}"
        extra = (
            {k: v for k, v in body.items() if k not in ("detail",)}
            if isinstance(body, dict)
            else {}
        )
        kind = STATUS_ERRORS.get(response.status_code, errors.InterlockError)
        error = kind(detail)
        error.extra = extra
        return error

    def _json(self, response: httpx.Response) -> Any:
        try:
            if SERVER_HEADER not in response.headers:
                raise ValueError("not Interlock")
            return response.json()
        except ValueError:
            raise self._foreign() from None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._json(self.request("GET", path, params=clean))

    def post(self, path: str, body: Any = None) -> Any:
        return self._json(self.request("POST", path, json=body if body is not None else {}))

    def delete(self, path: str) -> Any:
        response = self.request("DELETE", path)
        return self._json(response) if response.content else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fetch(path: str, **params: Any) -> Any:
    """GET ``path`` (``None`` parameters left out) on a client of its own, closed after."""
    with Client() as client:
        return client.get(path, **params)
