"""A deploy target that counts executions: per idempotency key and per (deployment, step).

Steps call ``POST /run?d=DEPLOYMENT&s=STEP&k=IDEMPOTENCY_KEY&idem=0|1``; the
target records the call as it arrives (a step that reached it has executed,
whatever happens to its worker afterwards), waits a little, and answers 200.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import POLL


@dataclass(frozen=True)
class Execution:
    key: str
    deployment: int
    step: str
    idempotent: bool
    at: float


@dataclass
class ExecutionTarget:
    delay: tuple[float, float] = (0.05, 0.25)
    url: str = ""
    executions: list[Execution] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def record(self, query: dict[str, list[str]]) -> None:
        execution = Execution(
            key=query["k"][0],
            deployment=int(query["d"][0]),
            step=query["s"][0],
            idempotent=query["idem"][0] == "1",
            at=time.time(),
        )
        with self.lock:
            self.executions.append(execution)

    def by_key(self) -> Counter[str]:
        with self.lock:
            return Counter(e.key for e in self.executions)

    def by_step(self) -> Counter[tuple[int, str, bool]]:
        """Executions per (deployment, step, idempotent)."""
        with self.lock:
            return Counter((e.deployment, e.step, e.idempotent) for e in self.executions)

    def start(self) -> ExecutionTarget:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                if parts.path != "/run":
                    self.send_response(404)
                    self.end_headers()
                    return
                target.record(parse_qs(parts.query))
                time.sleep(random.uniform(*target.delay))
                payload = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
