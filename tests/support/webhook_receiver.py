"""A real HTTP receiver on 127.0.0.1 for webhooks: checks signatures, fails on demand."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers import serving


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    signature_ok: bool | None  # None: the receiver has no secret

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def seq(self) -> int:
        return int(self.headers["x-interlock-sequence"])

    @property
    def id(self) -> str:
        return self.headers["x-interlock-delivery"]


@dataclass
class Receiver:
    url: str = ""
    secret: bytes | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0  # answer the next N requests with `fail_status`
    failing: bool = False  # answer every request with `fail_status` while set
    fail_status: int = 500
    delay: float = 0.0  # seconds before answering (to provoke timeouts)
    refuse_event: str | None = None  # answer 400 to every delivery of this event type, for good
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 200
            if self.failing:
                status = self.fail_status
            elif self.refuse_event and headers.get("x-interlock-event") == self.refuse_event:
                status = 400
            elif self.fail_next > 0:
                self.fail_next -= 1
                status = self.fail_status
            ok = None
            if self.secret is not None:
                expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, headers.get("x-interlock-signature-256", ""))
            self.deliveries.append(Delivery(headers, body, status, ok))
            return status

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def wait(
        self, probe: Callable[[list[Delivery]], bool], timeout: float = 15.0, what: str = ""
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.accepted()
            if probe(found):
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what or 'deliveries'}: got "
            f"{[(d.seq, d.headers.get('x-interlock-event'), d.status) for d in self.deliveries]}"
        )


def serve(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            payload = b'{"ok": true}' if status < 300 else b'{"error": "injected"}'
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (a timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as base:
        receiver.url = f"{base}/hook"
        yield receiver
