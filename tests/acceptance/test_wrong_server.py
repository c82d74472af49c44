"""INTERLOCK_URL pointing at some other HTTP service: a clear error, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.helpers import serving
from tests.support.server import INTERLOCK

MINIMAL = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""


class _AnyJson(BaseHTTPRequestHandler):
    """Answers 200 with a JSON object to everything, as many services do."""

    def _answer(self) -> None:
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/releases/404"):
            self.send_error(404)  # another service's error page
        else:
            self._answer()

    do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_service() -> Iterator[str]:
    with serving(_AnyJson) as url:
        yield url


def _cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTERLOCK_URL": url, "INTERLOCK_TOKEN": "x"}
    env["INTERLOCK_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [INTERLOCK, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_commands_say_the_url_is_not_interlock(tmp_path, other_service):
    for args in (
        ["status"],
        ["release", "create", "api@1.0.0", "--reason", "T-1"],
        ["release", "show", "1", "--format", "json"],
        ["audit", "verify"],
        ["release", "show", "404"],
    ):
        result = _cli(tmp_path, other_service, *args)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert result.returncode == 3, (args, result.stderr)
        assert "not as an Interlock server does; check INTERLOCK_URL" in result.stderr


def test_plan_still_plans_without_estimates(tmp_path, other_service):
    (tmp_path / "interlock.yaml").write_text(MINIMAL)
    result = _cli(tmp_path, other_service, "plan", "api@1.0.0")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "staging" in result.stdout
