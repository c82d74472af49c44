"""Real ``interlock worker`` processes, started, killed with ``kill -9`` and restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.postgres import pg_query
from tests.support.server import INTERLOCK


class WorkerProcess:
    """One ``interlock worker`` subprocess; its output goes to ``workdir/NAME.log``."""

    def __init__(self, workdir: Path, database_url: str, *args: str, name: str = "worker") -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.args = args
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env.pop("INTERLOCK_TOKEN", None)
        self.env["INTERLOCK_DATABASE_URL"] = database_url

    @property
    def instance(self) -> str:
        """``host:pid``: how the engine names this process (leases, connections)."""
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}"

    def start(self, wait: bool = True) -> WorkerProcess:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                [INTERLOCK, "worker", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            try:
                self.wait_ready()
            except AssertionError:
                self.kill()  # nothing outlives a failed start (the next test would see it)
                raise
        return self

    def listening(self) -> bool:
        """Whether its LISTEN connection is up (the worker is running and reachable)."""
        name = f"interlock listen {self.instance}"[:63]
        rows = pg_query(
            self.database_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            name,
        )
        return bool(rows[0][0])

    def wait_ready(self, timeout: float = 90.0) -> None:
        # Like a server's start: ~1.5 s of CPU, 20 s and more on a machine at a load of 25.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({self.process.returncode}):\n{self.log()}"
                )
            if self.listening():
                return
            time.sleep(0.1)
        raise AssertionError(f"the worker did not start listening:\n{self.log()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
