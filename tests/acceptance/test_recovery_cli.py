"""Recovery from the command line, and a rollback that survives kill -9 of the server."""

from __future__ import annotations

import time

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
roles: {dba: [admin]}
environments:
  - name: production
    production: true
services:
  api:
    deploy:
      - name: roll-out
        run: >-
          echo {{ version }} > current.txt;
          if [ -f slow-{{ version }} ]; then echo "slow {{ version }}" >> story.log;
          n=0; while [ ! -f go-{{ version }} ] && [ $n -lt 600 ];
          do sleep 0.05; n=$((n+1)); done; fi;
          test ! -f fail-{{ version }}
        idempotent: true
runbooks:
  restart:
    params: {reason: {required: true}}
    steps:
      - {name: drain, run: "echo drain {{ params.reason }} >> story.log"}
      - name: confirm
        manual: {instructions: "Check the dashboards are green", role: dba}
"""


def _release(server, version: str) -> str:
    """Set-up: a release through the API (the CLI's create is proven elsewhere)."""
    return server.create(f"api@{version}", reason=f"v{version}")


def _released(server, version: str) -> None:
    """Set-up: api on ``version`` in production."""
    assert server.wait_release(_release(server, version))["state"] == "succeeded"


def _waiting(server, run_id: str) -> bool:
    """The run's manual step waits for its sign-off."""
    steps = server.api("GET", f"/runbook-runs/{run_id}")["steps"]
    return any(step["state"] == "waiting" for step in steps)


def test_a_rollback_survives_kill_9_of_the_server(project, server):
    write_config(project, CONFIG)
    server.start()
    _released(server, "1")
    (project / "fail-2").touch()
    (project / "slow-1").touch()  # the rollback (to 1) waits for go-1: killed mid-way
    release_id = _release(server, "2")
    wait_for(
        lambda: (
            (project / "story.log").exists() and "slow 1" in (project / "story.log").read_text()
        ),
        30,
        message="the rollback step to start",
    )
    server.kill()
    (project / "go-1").touch()  # the re-run of the rollback step goes through
    server.start()
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 1 and "rolled back: api is back on 1" in watch.stdout
    assert (project / "current.txt").read_text().strip() == "1"
    shown = server.release(release_id)
    assert shown["deployments"][0]["state"] == "rolled_back"
    assert shown["deployments"][0]["services"] == {"api": "rolled_back"}
    incidents = server.json("incident", "list", "--open")
    assert len(incidents) == 1 and incidents[0]["deployment_id"] == shown["deployments"][0]["id"]
    assert server.api("GET", "/audit/verify")["ok"]
    assert (project / "story.log").read_text().count("slow 1") == 2  # re-run after the crash


@one_backend  # the CLI's answers (rollbacks, runbooks, blocks on both: tests/integration)
def test_rollback_dry_run_then_for_real(project, server):
    write_config(project, CONFIG)
    server.start()
    for version in ("1", "2"):
        _released(server, version)
    dry = server.cli("rollback", "api", "--env", "production", "--reason", "drill", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would roll api in production back from 2 to 1" in dry.stdout
    assert "$ echo 1 > current.txt" in dry.stdout
    assert (project / "current.txt").read_text().strip() == "2"
    real = server.cli("rollback", "api", "--env", "production", "--reason", "errors up", "--watch")
    assert real.returncode == 0, real.stdout + real.stderr
    assert "succeeded" in real.stdout and "(1/1 environments, 1/1 steps)" in real.stdout
    shown = server.cli("release", "show", real.stdout.split()[0]).stdout
    assert "progress: 1/1 environments, 1/1 steps" in shown
    assert (project / "current.txt").read_text().strip() == "1"
    status = server.api("GET", "/status")
    assert status["entries"][0]["version"] == "1"


@one_backend  # the CLI's answers (rollbacks, runbooks, blocks on both: tests/integration)
def test_runbook_with_a_manual_step_from_the_cli(project, server):
    write_config(project, CONFIG)
    server.start()
    missing = server.cli("runbook", "run", "restart")
    assert missing.returncode == 2 and "'reason' is required" in missing.stderr
    run_id = server.cli("runbook", "run", "restart", "--param", "reason=INC-5").stdout.strip()
    wait_for(lambda: _waiting(server, run_id), message="the manual step to wait")
    shown = server.cli("runbook", "show", run_id).stdout
    assert "Check the dashboards are green" in shown and "signed off by dba" in shown
    signed = server.cli("runbook", "sign", run_id, "confirm", "--comment", "all green")
    assert signed.returncode == 0, signed.stderr
    wait_for(lambda: server.api("GET", f"/runbook-runs/{run_id}")["state"] == "succeeded")
    assert "drain INC-5" in (project / "story.log").read_text()
    time.sleep(0.1)
    assert [r["id"] for r in server.json("runbook", "runs")] == [int(run_id)]


def test_a_runbook_run_waiting_for_a_sign_off_survives_kill_9(project, server):
    """The on-call person signs after the server was killed and restarted: the run
    goes on from its manual step, and its automated step did not run again."""
    write_config(project, CONFIG)
    server.start()
    run = server.api("POST", "/runbooks/restart/runs", {"params": {"reason": "INC-7"}})
    run_id = str(run["id"])
    wait_for(lambda: _waiting(server, run_id), message="the manual step to wait")
    server.kill()
    server.start()
    shown = server.api("GET", f"/runbook-runs/{run_id}")
    assert shown["state"] == "running"
    signed = server.cli("runbook", "sign", run_id, "confirm", "--comment", "green again")
    assert signed.returncode == 0, signed.stderr + server.log()
    wait_for(lambda: server.api("GET", f"/runbook-runs/{run_id}")["state"] == "succeeded")
    assert (project / "story.log").read_text().count("drain INC-7") == 1
    assert server.api("GET", "/audit/verify")["ok"]


@one_backend  # the CLI's answers (rollbacks, runbooks, blocks on both: tests/integration)
def test_block_a_bare_version_from_the_cli(project, server):
    write_config(project, CONFIG)
    server.start()
    _released(server, "1")
    (project / "slow-2").touch()
    release_id = _release(server, "2")
    wait_for(
        lambda: (
            (project / "story.log").exists() and "slow 2" in (project / "story.log").read_text()
        ),
        30,
    )
    blocked = server.cli("release", "block", "2", "--reason", "CVE-2026-1")
    assert blocked.returncode == 0, blocked.stderr
    assert "api@2 is blocked" in blocked.stdout
    (project / "go-2").touch()  # the step ends once the block is in, however slow the CLI
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 1 and "blocked by admin: CVE-2026-1" in watch.stdout
    again = server.cli("release", "create", "api@2", "--reason", "retry")
    assert again.returncode == 6 and "api@2 is blocked: CVE-2026-1" in again.stderr
    assert server.cli("release", "block", "7", "--reason", "x").returncode == 2
    assert server.cli("release", "unblock", "api@2", "--reason", "fixed").returncode == 0
