"""Schemathesis against the real server's /openapi.json: no 5xx, every answer as documented.

A real ``interlock server`` on a SQLite file, a config with services, environments,
gates and a runbook, an admin token, and a second person who approves (four-eyes),
so the stateful phase's sequences (OpenAPI links: artifact -> release -> approval ->
cancel, incident -> resolve, ...) do real work. The run is bounded by
``INTERLOCK_FUZZ_SECONDS`` (default 30, what ``make test`` gives it); ``make fuzz``
runs it for 10 minutes (``make fuzz FUZZ_SECONDS=3600`` for longer).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_config
from tests.support.server import Server

SCHEMATHESIS = str(Path(sys.executable).parent / "st")
BUDGET = int(os.environ.get("INTERLOCK_FUZZ_SECONDS") or "30")
# A run by hand against PostgreSQL: a database URL (a fresh database; the server migrates it).
DATABASE_URL = os.environ.get("INTERLOCK_FUZZ_DATABASE_URL") or None
# What the API promises: no server error, and every answer's status, content type,
# headers and body are the ones /openapi.json documents for it.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)

# An unhandled error the server logs (method and path, exception class).
CRASH = re.compile(r"unhandled error on (\S+ \S+)\n.*?^([\w.]+): ", re.S | re.M)

CONFIG = """\
version: 1
teams: {payments: [], web: []}
roles: {release-managers: [carol]}
permissions:
  - {role: release-managers, allow: [approve, read, lock, freeze.override, audit.read]}
environments:
  - name: staging
  - name: production
    production: true
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 1}], expires: 1d}
services:
  api:
    owner: payments
    deploy: [{name: roll-out, run: "true", idempotent: true}]
    rollback: [{name: roll-back, run: "true", idempotent: true}]
  web:
    owner: web
    depends_on: [api]
    deploy: [{name: roll-out, run: "true", idempotent: true}]
runbooks:
  restart:
    description: Restart the API
    params:
      region: {required: true, description: Which region}
    steps:
      - {name: announce, run: "true"}
      - name: check
        manual: {instructions: "Look at the dashboard", role: release-managers}
"""


# Operations that could take the fuzzer's own access away (revoke its token, drop it
# from the admin role) run as a bystander who may not manage users.
BYSTANDER_OPERATIONS = (
    "DELETE /api/v1/tokens/{token_id}",
    "DELETE /api/v1/roles/{role}/members/{user}",
)


# Names the config knows, drawn often enough that releases, approvals and incidents
# happen (random text only meets 404s); random values are still drawn the rest of the time.
VALUES = {
    "service": ("services", ["api", "web"]),
    "services[*]": ("refs", ["api@1.0.0", "web@1.0.0", "api@1.1.0"]),
    "environment": ("environments", ["staging", "production"]),
    "version": ("versions", ["1.0.0", "1.1.0"]),
    "until": ("environments", ["staging", "production"]),
    "from": ("environments", ["staging", "production"]),
    "reason": ("reasons", ["PAY-1 fuzzing"]),
    "step": ("steps", ["check", "announce"]),
}
REALISTIC = [
    *(
        f"[dictionaries.{name}]\nvalues = {json.dumps(values)}"
        for name, values in dict(VALUES.values()).items()
    ),
    "[parameters]",
    *(
        f'"{where}.{key}" = {{ dictionary = "{name}", probability = 0.7 }}'
        for key, (name, _) in VALUES.items()
        for where in ("body", "path", "query")
        if where == "body" or key in ("service", "environment", "version", "step")
    ),
]


def _token(server: Server, user: str) -> str:
    assert server.cli("user", "add", user).returncode == 0
    created = server.cli("token", "create", "--user", user, "--name", "fuzz")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def tokens(server: Server) -> dict[str, str]:
    """The fuzzer's callers: the server's admin, an approver (four-eyes), a bystander."""
    admin = (server.workdir / ".interlock" / "admin.token").read_text().strip()
    return {
        "admin": admin,
        "approver": _token(server, "carol"),
        "bystander": _token(server, "dave"),
    }


def schemathesis(url: str, callers: dict[str, str], workdir: Path, budget: int) -> list[str]:
    """The ``st run`` command line (and its config file in ``workdir``) against ``url``."""
    config = workdir / "schemathesis.toml"
    lines = [f'headers = {{ Authorization = "Bearer {callers["admin"]}" }}', *REALISTIC]
    routes = [
        ("POST /api/v1/releases/{release_id}/approvals", "approver"),
        ("POST /api/v1/runbook-runs/{run_id}/steps/{step}/sign", "approver"),
    ]
    routes += [(name, "bystander") for name in BYSTANDER_OPERATIONS]
    for name, caller in routes:
        lines += [
            "[[operations]]",
            f'include-name = "{name}"',
            f'headers = {{ Authorization = "Bearer {callers[caller]}" }}',
        ]
    config.write_text("\n".join(lines) + "\n")
    return [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-time",
        str(budget),
        "--workers",
        "1",
        # a long-poll may hold for its whole `wait` (at most 60 s)
        "--request-timeout",
        "70",
        "--report",
        "json",
        "--report-json-path",
        str(workdir / "report.json"),
    ]


@pytest.mark.slow
@pytest.mark.timeout(BUDGET * 2 + 180)
def test_the_api_answers_as_its_openapi_document_says(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_config(project, CONFIG)
    server = Server(project, database_url=DATABASE_URL)
    try:
        server.start()
        command = schemathesis(server.url, tokens(server), tmp_path, BUDGET)
        run = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=BUDGET * 2 + 120
        )
        output = run.stdout[-20000:] + run.stderr[-4000:] + "\nserver log:\n" + server.log()[-6000:]
        assert (tmp_path / "report.json").exists(), output
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["complete"], output
        cases = report["test_cases"]
        print(f"schemathesis: {cases['generated']} test cases, {cases['with_failures']} failed")
        assert not CRASH.findall(server.log()), output
        assert not report["failures"] and not report["errors"], output
    finally:
        server.stop()
