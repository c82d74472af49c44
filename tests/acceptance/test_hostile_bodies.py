"""A 300 MB body thrown at a real server: 401 or 413 at once, and the server stays small."""

from __future__ import annotations

import time
from pathlib import Path

from tests.acceptance.conftest import one_backend
from tests.support.server import Server
from tests.support.streaming import stream

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""
BIG = 300 * 1024 * 1024
GROWTH = 50 * 1024 * 1024  # what the server's peak memory may grow by, at most


def _memory(pid: int, field: str) -> int:
    """VmRSS or VmHWM (the peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@one_backend
def test_a_300_mb_body_is_refused_promptly_and_never_held(project: Path, server: Server):
    (project / "interlock.yaml").write_text(CONFIG)
    server.start()
    assert server.process is not None
    pid = server.process.pid
    token = (project / ".interlock" / "admin.token").read_text().strip()
    peak = _memory(pid, "VmHWM")
    started = time.monotonic()
    # No token: 401 before the body is read, with its length declared and without.
    for chunked in (False, True):
        answer = stream(server.url, "/api/v1/releases", size=BIG, chunked=chunked)
        assert answer.status == 401, answer.body
    # A valid token: 413 as soon as the default cap (1 MiB) is passed.
    for chunked in (False, True):
        answer = stream(
            server.url,
            "/api/v1/releases",
            size=BIG,
            chunked=chunked,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status == 413, answer.body
        assert "--max-body" in answer.body["detail"]
    # Unsigned GitHub hooks are read up to their cap (5 MiB), then refused.
    answer = stream(server.url, "/api/v1/hooks/github", size=BIG, chunked=True)
    assert answer.status == 413, answer.body
    elapsed = time.monotonic() - started
    grown = _memory(pid, "VmHWM") - peak
    print(f"5 bodies of 300 MB refused in {elapsed:.1f} s; peak RSS grew {grown >> 20} MiB")
    assert elapsed < 30
    assert grown < GROWTH, f"the server's peak memory grew by {grown >> 20} MiB"
    # And it still serves.
    assert server.api("GET", "/status")["entries"] == []
