"""A platform engineer changes production's gates: `config diff`, `config reload --reason`,
and a second person's `config approve`, with the real command and server."""

from __future__ import annotations

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config

CONFIG = """\
version: 1
roles: {platform: [pat]}
config_changes:
  review: production_gates
  approvers: {role: platform}
environments:
  - name: staging
  - name: production
    production: true
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
"""
GATED = CONFIG.replace(
    "    production: true\n",
    "    production: true\n    gates: {before: [{approval: {rules: [{role: platform}]}}]}\n",
)


@one_backend  # the CLI's review commands (config changes on both: tests/integration)
def test_a_production_gate_change_is_diffed_requested_and_approved_by_another(project, server):
    write_config(project, CONFIG)
    server.start()
    token = server.user("pat")  # set-up: through the API
    write_config(project, GATED)
    diff = server.cli("config", "diff")
    assert diff.returncode == 0, diff.stderr
    assert "+ gate production/before/approval   (needs approval)" in diff.stdout
    assert "1 change(s) need approval" in diff.stdout
    asked = server.cli("config", "reload", "--reason", "OPS-9: gate production")
    assert asked.returncode == 0, asked.stderr
    assert "config change 1 waits for approval (0 of 1)" in asked.stdout
    assert server.json("config", "show")["version"] == 1
    own = server.cli("config", "approve", "1")
    assert own.returncode == 4 and "four-eyes" in own.stderr
    approved = server.cli("config", "approve", "1", INTERLOCK_TOKEN=token)
    assert approved.returncode == 0, approved.stderr
    assert "config change 1 applied: version 2 is active" in approved.stdout
    listed = server.cli("config", "changes")
    assert "1  applied" in listed.stdout and "OPS-9: gate production" in listed.stdout


def test_config_diff_against_another_file_needs_no_server(project):
    import os
    import subprocess

    from tests.support.server import INTERLOCK

    old = write_config(project, CONFIG, name="main.yaml")
    write_config(
        project, GATED.replace("  api: {", "  web: {deploy: [{name: d, run: x}]}\n  api: {")
    )
    done = subprocess.run(
        [INTERLOCK, "config", "diff", "--against", str(old)],
        cwd=project,
        env={**os.environ, "INTERLOCK_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"against {old}" in done.stdout
    assert "+ gate production/before/approval   (needs approval)" in done.stdout
    assert "+ service web\n" in done.stdout
