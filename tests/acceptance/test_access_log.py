"""`interlock server --access-log` prints a line per request, with known secrets masked."""

from __future__ import annotations

import secrets as random

import httpx

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
environments: [{name: staging}]
secrets: [ACCESS_KEY]
services:
  web:
    deploy:
      - {name: deploy, run: "true"}
"""


@one_backend
def test_the_access_log_shows_each_request_with_its_secrets_masked(project, server):
    key = f"access-{random.token_hex(8)}"
    write_config(project, CONFIG)
    server.env["ACCESS_KEY"] = key
    server.start("--access-log")

    assert httpx.get(f"{server.url}/readyz", params={"key": key}, timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/status", timeout=10).status_code == 401

    line = wait_for(
        lambda: next((x for x in server.log().splitlines() if "/api/v1/status" in x), None),
        message="the access line of the refused call",
    )
    assert '"GET /api/v1/status HTTP/1.1" 401' in line
    assert '"GET /readyz?key=*** HTTP/1.1" 200' in server.log()
    server.stop()
    assert key not in server.log()
    assert "Traceback" not in server.log()
