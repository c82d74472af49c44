"""A real Prometheus server for tests, scraping a tiny exporter that the test controls.

Use it as a fixture::

    from tests.support.prometheus import PrometheusServer, prometheus_server  # noqa: F401

    def test_something(prometheus_server: PrometheusServer) -> None:
        prometheus_server.exporter.set("interlock_test_ratio", 0.5, job="api")
        prometheus_server.wait_for_value("interlock_test_ratio", 0.5)
        ...  # query prometheus_server.url

or load it for a whole directory with ``pytest_plugins = ["tests.support.prometheus"]``
in the top-level conftest.py.

The server is Debian's ``prometheus`` package (``/usr/bin/prometheus``; set
``INTERLOCK_PROMETHEUS_BIN`` to use another binary). It listens on a free port
of 127.0.0.1, keeps its data in a temporary directory, scrapes every second and
forgets a series 5 s after its last sample. One server serves a whole test
module: give each test its own metric names.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import POLL
from tests.support.server import PROBE

PROMETHEUS_BIN = "/usr/bin/prometheus"
EXPORTER_JOB = "interlock-test-exporter"
START_TIMEOUT = 60.0

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exporter:
    """Serves gauges in the Prometheus text format on ``http://127.0.0.1:PORT/metrics``."""

    def __init__(self) -> None:
        self._series: dict[SeriesKey, float] = {}
        self._lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                body = exporter.render().encode()
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep the test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL,), daemon=True
        )
        self._thread.start()

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``, as Prometheus scrapes it."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, value: float, **labels: str) -> None:
        """Publish (or change) the gauge ``name{labels}``."""
        with self._lock:
            self._series[(name, tuple(sorted(labels.items())))] = value

    def remove(self, name: str, **labels: str) -> None:
        """Stop publishing ``name{labels}``."""
        with self._lock:
            self._series.pop((name, tuple(sorted(labels.items()))), None)

    def render(self) -> str:
        """The exposition text of every published series."""
        with self._lock:
            series = sorted(self._series.items())
        lines: list[str] = []
        typed: set[str] = set()
        for (name, labels), value in series:
            if name not in typed:
                lines.append(f"# TYPE {name} gauge")
                typed.add(name)
            pairs = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{pairs}}} {_format_value(value)}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class PrometheusServer:
    """A running Prometheus server and the exporter it scrapes."""

    url: str  # base URL, e.g. http://127.0.0.1:41234
    exporter: Exporter
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path

    def query(self, promql: str) -> dict[str, Any]:
        """The raw JSON answer of ``/api/v1/query``."""
        response = PROBE.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        document: dict[str, Any] = response.json()
        return document

    def values(self, promql: str) -> list[float]:
        """The values of the series the query returns now (empty on an error)."""
        document = self.query(promql)
        if document.get("status") != "success":
            return []
        data = document["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(item["value"][1]) for item in data["result"]]

    def wait_for_value(self, promql: str, expected: float, timeout: float = 20.0) -> None:
        """Wait until the query returns exactly one series whose value is ``expected``."""
        deadline = time.monotonic() + timeout
        seen: list[float] = []
        while time.monotonic() < deadline:
            seen = self.values(promql)
            if len(seen) == 1 and (
                seen[0] == expected or (math.isnan(expected) and math.isnan(seen[0]))
            ):
                return
            time.sleep(0.2)
        pytest.fail(
            f"Prometheus did not show {promql} = {expected} within {timeout:g}s "
            f"(last seen: {seen})\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no Prometheus log)"
        return "Prometheus log:\n" + "\n".join(text.splitlines()[-lines:])


def prometheus_binary() -> str:
    """The Prometheus binary to run; fails the test (never skips) when there is none."""
    wanted = os.environ.get("INTERLOCK_PROMETHEUS_BIN")
    found = shutil.which(wanted) if wanted else shutil.which(PROMETHEUS_BIN)
    found = found or (None if wanted else shutil.which("prometheus"))
    wanted = wanted or PROMETHEUS_BIN
    if not found:
        pytest.fail(
            f"the Prometheus server binary ({wanted}) is not installed: `make test` installs it "
            "(Debian package `prometheus`: apt-get install -y --no-install-recommends prometheus)",
            pytrace=False,
        )
    return found


def _config(exporter: Exporter) -> str:
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {EXPORTER_JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['{exporter.target}']\n"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _ready(server: PrometheusServer) -> bool:
    """True once the exporter has been scraped and its sample can be queried."""
    try:
        if PROBE.get(f"{server.url}/-/ready", timeout=2).status_code != 200:
            return False
        return server.values(f'up{{job="{EXPORTER_JOB}"}}') == [1.0] and server.values(
            "interlock_fixture_ready"
        ) == [1.0]
    except (httpx.HTTPError, ValueError):
        return False


def start_prometheus(work_dir: Path, exporter: Exporter) -> PrometheusServer:
    """Start Prometheus in ``work_dir``, scraping ``exporter``; wait until a sample is queryable."""
    binary = prometheus_binary()
    exporter.set("interlock_fixture_ready", 1)
    config = work_dir / "prometheus.yml"
    config.write_text(_config(exporter))
    failures: list[str] = []
    for attempt in range(3):  # another process may take the free port before Prometheus does
        port = free_port()
        data_dir = work_dir / f"data-{attempt}"
        log_path = work_dir / f"prometheus-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--query.lookback-delta=5s",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = PrometheusServer(f"http://127.0.0.1:{port}", exporter, process, data_dir, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if _ready(server):
                return server
            time.sleep(0.25)
        _stop(process)
        failures.append(f"attempt {attempt + 1} on port {port}:\n{server.log_tail()}")
        if "address already in use" not in server.log_tail():
            break
    pytest.fail("Prometheus did not become ready:\n" + "\n".join(failures), pytrace=False)


@pytest.fixture(scope="module")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 scraping a test exporter every second (one per module)."""
    exporter = Exporter()
    try:
        server = start_prometheus(tmp_path_factory.mktemp("prometheus"), exporter)
        try:
            yield server
        finally:
            _stop(server.process)
    finally:
        exporter.close()
