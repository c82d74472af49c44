"""The real ``interlock`` command and a real ``interlock server`` process, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

INTERLOCK = str(Path(sys.executable).parent / "interlock")
# One client for every readiness probe: httpx.get() builds a client (and its TLS
# context) per call, 30-100 ms of CPU, paid ten times or more per server start.
# No connection is kept: none is left open when the test process ends.
PROBE = httpx.Client(timeout=1, limits=httpx.Limits(max_keepalive_connections=0))
# For the calls a test makes to set up or to wait (not what it proves): a CLI run is a
# Python start-up, 0.15-0.5 s of CPU, where an HTTP call is a few milliseconds.
API = httpx.Client(timeout=60, limits=httpx.Limits(max_keepalive_connections=0))
# The states a release ends in.
ENDED = ("succeeded", "failed", "cancelled", "needs_attention")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """One ``interlock server`` subprocess in ``workdir`` (its config and INTERLOCK_HOME)."""

    def __init__(self, workdir: Path, database_url: str | None = None, **env: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.env = {
            **os.environ,
            "INTERLOCK_HOME": str(workdir / ".interlock"),
            "INTERLOCK_URL": self.url,
            "PYTHONUNBUFFERED": "1",
            # A test's stop should not wait out the default 10 s drain of a running step
            # (test_shutdown.py sets its own).
            "INTERLOCK_DRAIN": "1",
            **env,
        }
        self.env.pop("INTERLOCK_TOKEN", None)
        if database_url:
            self.env["INTERLOCK_DATABASE_URL"] = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"
        self.starts = 0

    def start(self, *extra: str, wait: bool = True) -> Server:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                [INTERLOCK, "server", "--port", str(self.port), "--lease-ttl", "3", *extra],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        # A start is ~1.5 s of CPU (imports, the app's routes): 20 s and more at a load of 25.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the server exited ({self.process.returncode}):\n{self.log()}"
                )
            try:
                if PROBE.get(f"{self.url}/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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

    def cli(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [INTERLOCK, *args],
            cwd=self.workdir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def admin_token(self) -> str:
        """The CLI's token (INTERLOCK_TOKEN), else the administrator's the first start made."""
        given = self.env.get("INTERLOCK_TOKEN")
        return given or (self.workdir / ".interlock" / "admin.token").read_text().strip()

    def api(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, **params: Any
    ) -> Any:
        """One call of the server's HTTP API (``/api/v1`` + ``path``), as the admin unless
        ``token`` is given; its JSON. For set-up and waiting: what a test proves of the
        CLI it still proves with :meth:`cli`."""
        response = API.request(
            method,
            f"{self.url}/api/v1{path}",
            json=body,
            params={k: v for k, v in params.items() if v is not None},
            headers={"authorization": f"Bearer {token or self.admin_token()}"},
        )
        assert response.status_code < 400, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def user(self, name: str) -> str:
        """Add the user ``name``; a new API token of theirs."""
        self.api("POST", "/users", {"name": name})
        return str(self.api("POST", f"/users/{name}/tokens", {"name": "test"})["token"])

    def create(
        self, *refs: str, reason: str = "test", token: str | None = None, **more: Any
    ) -> str:
        """Create a release of ``refs`` (SERVICE@VERSION) through the API; its id."""
        body = {"services": list(refs), "reason": reason, **more}
        return str(self.api("POST", "/releases", body, token=token)["id"])

    def release(self, release_id: str | int, *, token: str | None = None, **params: Any) -> Any:
        """``release show --format json`` without a CLI run."""
        return self.api("GET", f"/releases/{release_id}", token=token, **params)

    def waits(self, release_id: str | int, *, token: str | None = None) -> bool:
        """Whether a step or gate of the release waits (on an approval, a sign-off)."""
        found = self.release(release_id, token=token)
        return any(s["state"] == "waiting" for d in found["deployments"] for s in d["steps"])

    def wait_release(
        self, release_id: str | int, states: tuple[str, ...] = ENDED, timeout: float = 60
    ) -> Any:
        """Long-poll the release (as `release watch` does) until its state is one of
        ``states``; the release."""
        deadline = time.monotonic() + timeout
        revision = -1
        while True:
            found = self.release(release_id, since=revision, wait=min(10.0, timeout))
            if found["state"] in states:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"release {release_id} is still {found['state']}")
            revision = found["revision"]

    def json(self, *args: str, **env: str) -> Any:
        result = self.cli(*args, "--format", "json", **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
