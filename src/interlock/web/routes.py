"""Serve the web UI: the SPA shell for every page under ``/ui/`` and its static files.

The pages hold no data, so serving them needs no token; every piece of data
comes from an authenticated call to ``/api/v1``. Only files that ship in
``interlock/web/static`` are ever served (looked up by name in a table built
from the package, so no path from a request reaches the file system).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
SHELL = "index.html"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.is_file():
            found[f"{prefix}{entry.name}"] = entry
    return found


@lru_cache(maxsize=1)
def assets() -> dict[str, Asset]:
    """Every static file of the package, read once: name -> body, type, ETag."""
    out = {}
    for name, entry in _walk(files("interlock.web").joinpath("static")).items():
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        out[name] = Asset(body, TYPES[suffix], etag)
    return out


def _send(request: Request, asset: Asset) -> Response:
    headers = {
        **SECURITY_HEADERS,
        "ETag": asset.etag,
        # Revalidate every time: an upgraded server never runs a stale app.js.
        "Cache-Control": "no-cache",
    }
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["content-length"] = str(len(asset.body))
    return response


def _shell(request: Request) -> Response:
    return _send(request, assets()[SHELL])


@router.api_route("/", methods=["GET", "HEAD"])
def root() -> RedirectResponse:
    """The server's front page is the UI."""
    return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)


@router.api_route("/ui", methods=["GET", "HEAD"])
def ui_bare() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307, headers=SECURITY_HEADERS)


@router.api_route("/ui/", methods=["GET", "HEAD"])
def ui(request: Request) -> Response:
    """The single-page app (it holds no data: that comes from authenticated API calls)."""
    return _shell(request)


@router.api_route("/ui/{path:path}", methods=["GET", "HEAD"])
def ui_path(path: str, request: Request) -> Response:
    """A static file of the app, or the app itself for a client-side route."""
    found = assets().get(path)
    if found is not None:
        return _send(request, found)
    last = path.rsplit("/", 1)[-1]
    if "." in last:  # a file that does not exist: never answer with the app instead
        return PlainTextResponse(
            f"no such file: /ui/{path}", status_code=404, headers=SECURITY_HEADERS
        )
    return _shell(request)
