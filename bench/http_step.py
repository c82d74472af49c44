"""What an `http` step costs over the HTTP call itself, measured in one run.

    python bench/http_step.py

A local server on 127.0.0.1 answers 200 at once. The baseline is the same
POST through one long-lived httpx client (connection set up once, as cheap as a
call gets from Python); the step is ``HttpExecutor.run`` as a worker calls it:
placeholders, a client of its own, the cancel watch, the response check.
Ratio = step time / baseline time.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import httpx  # noqa: E402

from interlock.executors.base import LogSink, StepContext  # noqa: E402
from interlock.executors.http import HttpExecutor  # noqa: E402


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def timed(call, runs: int) -> float:
    call()  # warm up
    began = time.perf_counter()
    for _ in range(runs):
        call()
    return (time.perf_counter() - began) / runs


def main(runs: int = 50) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/deploy/{{{{ version }}}}"
    executor = HttpExecutor()
    spec = {"http": {"method": "POST", "url": url, "expect_status": 200}}

    def step() -> None:
        ctx = StepContext(
            variables={"version": "1.4.2"}, environ={}, cwd=".", timeout=10, log=LogSink(65536)
        )
        result = executor.run(spec, ctx)
        assert result.ok, result.error

    with httpx.Client() as client:

        def raw() -> None:
            client.post(url.replace("{{ version }}", "1.4.2")).raise_for_status()

        baseline = timed(raw, runs)
        cost = timed(step, runs)
    server.shutdown()
    print(f"raw POST, one long-lived client: {baseline * 1000:6.2f} ms")
    print(f"http step (HttpExecutor.run):    {cost * 1000:6.2f} ms")
    print(f"ratio: {cost / baseline:.1f}  ({runs} runs each)")


if __name__ == "__main__":
    main()
