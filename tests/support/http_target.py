"""A real HTTP server on 127.0.0.1 that records what deploy steps send it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.helpers import serving


@dataclass
class Target:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: str = '{"ok": true}'
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"] == path)


@pytest.fixture
def http_target() -> Iterator[Target]:
    target = Target(url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            with target.lock:
                target.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": raw,
                        "json": json.loads(raw) if raw.startswith(("{", "[")) else None,
                    }
                )
            payload = target.body.encode()
            self.send_response(target.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as target.url:
        yield target
