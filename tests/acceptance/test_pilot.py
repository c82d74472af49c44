"""A platform engineer pilots Interlock on one service, with the real command and server."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.acceptance.conftest import one_backend
from tests.helpers import write_config
from tests.support.server import INTERLOCK, free_port

APPEND = """\
version: 1
environments:
  - name: dev
  - name: staging
  - name: production
services:
  api:
    deploy:
      - name: migrate
        run: echo "{{ environment }} migrate {{ version }}" >> deployed.log
        idempotent: true
      - name: roll-out
        run: echo "{{ environment }} roll-out {{ version }}" >> deployed.log
"""


def test_init_validate_plan_need_no_server(project):
    env = {**os.environ, "INTERLOCK_URL": f"http://127.0.0.1:{free_port()}"}

    def run(*args):
        return subprocess.run(
            [INTERLOCK, *args], cwd=project, env=env, capture_output=True, text=True, timeout=30
        )

    assert run("init").returncode == 0
    assert (
        "# yaml-language-server: $schema=./interlock.schema.json"
        in (project / "interlock.yaml").read_text()
    )
    assert json.loads((project / "interlock.schema.json").read_text())["title"]
    assert run("init").returncode == 6  # refuses to overwrite
    valid = run("validate")
    assert valid.returncode == 0 and "is valid" in valid.stdout
    plan = run("plan", "api@1.4.2")
    assert plan.returncode == 0
    lines = plan.stdout.splitlines()
    assert lines[0] == "release of api@1.4.2: dev → staging → production"
    assert '$ echo "deploying api 1.4.2 to staging"' in plan.stdout
    assert "timeout 15m" in plan.stdout and "retries 2" in plan.stdout
    as_json = json.loads(run("plan", "api@1.4.2", "--format", "json").stdout)
    assert [e["name"] for e in as_json["environments"]] == ["dev", "staging", "production"]

    (project / "interlock.yaml").write_text(
        (project / "interlock.yaml").read_text().replace("timeout: 15m", "timout: 15m")
    )
    bad = run("validate")
    assert bad.returncode == 2
    assert "interlock.yaml:" in bad.stderr and "did you mean 'timeout'?" in bad.stderr
    bad_json = json.loads(run("validate", "--format", "json").stdout)
    assert bad_json["valid"] is False and bad_json["errors"][0]["suggestion"] == "timeout"
    assert run("plan", "nope@1").returncode == 2


def test_cli_without_a_server_says_how_to_start_one(project):
    port = free_port()
    result = subprocess.run(
        [INTERLOCK, "status"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "INTERLOCK_URL": f"http://127.0.0.1:{port}"},
    )
    assert result.returncode == 3
    assert "cannot reach the Interlock server" in result.stderr
    assert "interlock server" in result.stderr and "Traceback" not in result.stderr


def test_a_release_reaches_production_and_everything_shows_it(project, server):
    write_config(project, APPEND)
    server.start()
    created = server.cli("release", "create", "api@1.4.2", "--reason", "PAY-123: new fee rules")
    assert created.returncode == 0, created.stderr
    release_id = created.stdout.strip()
    assert release_id.isdigit()
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 0, watch.stdout + watch.stderr
    assert f"release {release_id} succeeded" in watch.stdout
    assert (project / "deployed.log").read_text().splitlines() == [
        "dev migrate 1.4.2",
        "dev roll-out 1.4.2",
        "staging migrate 1.4.2",
        "staging roll-out 1.4.2",
        "production migrate 1.4.2",
        "production roll-out 1.4.2",
    ]
    status = server.cli("status")
    assert status.returncode == 0
    assert "api" in status.stdout and status.stdout.count("1.4.2") == 3
    as_json = server.json("status")
    assert {(e["environment"], e["version"], e["release_id"]) for e in as_json["entries"]} == {
        ("dev", "1.4.2", int(release_id)),
        ("staging", "1.4.2", int(release_id)),
        ("production", "1.4.2", int(release_id)),
    }

    shown = server.json("release", "show", release_id)
    assert shown["state"] == "succeeded" and shown["reason"] == "PAY-123: new fee rules"
    assert shown["progress"] == {
        "steps_done": 6,
        "steps_total": 6,
        "environments_done": 3,
        "environments_total": 3,
    }
    assert "production" in server.cli("release", "show", release_id).stdout
    listed = server.json("release", "list")
    assert [r["id"] for r in listed["items"]] == [int(release_id)]
    logs = server.cli("release", "logs", release_id, "--step", "roll-out")
    assert logs.returncode == 0 and "production/api/roll-out" in logs.stdout
    # The key a header prints picks that one step out again.
    one = server.json("release", "logs", release_id, "--step", "production/api/roll-out")
    assert [e["key"] for e in one] == ["production/api/roll-out"]

    log = server.json("audit", "log")
    actions = [e["action"] for e in log]
    assert actions[:4] == ["config.loaded", "user.created", "token.created", "release.created"]
    assert actions[-1] == "release.succeeded"
    created = next(e for e in log if e["action"] == "release.created")
    assert created["actor"] == "admin"
    verify = server.cli("audit", "verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout
    checkpoint = server.cli("audit", "checkpoint").stdout.strip()
    assert server.cli("audit", "verify", "--checkpoint", checkpoint).returncode == 0
    exported = project / "audit.jsonl"
    assert server.cli("audit", "export", "--out", str(exported)).returncode == 0
    offline = server.cli("audit", "verify", "--file", str(exported), "--checkpoint", checkpoint)
    assert offline.returncode == 0, offline.stderr


@one_backend  # what the CLI prints and exits with (the engine on both: tests/integration)
def test_create_json_and_watch_exit_codes(project, server):
    write_config(
        project,
        """\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - {name: fail, run: "echo nope; exit 4"}
        """,
    )
    server.start()
    created = server.json("release", "create", "api@1.0.0", "--reason", "r")
    assert set(created) >= {"id", "state"} and created["state"] == "running"
    watch = server.cli("release", "watch", str(created["id"]), "--timeout", "60")
    assert watch.returncode == 1
    assert "failed" in watch.stdout and "exited with status 4" in watch.stdout
    # --watch --format json: stdout is one JSON document, the release as it ended.
    watched = server.cli(
        "release", "create", "api@1.0.1", "--reason", "r", "--watch", "--format", "json"
    )
    assert watched.returncode == 1
    ended = json.loads(watched.stdout)
    assert ended["state"] == "failed" and ended["id"] == created["id"] + 1
    bad = server.cli("release", "create", "api@1.0;rm", "--reason", "r")
    assert bad.returncode == 2 and "not a valid version" in bad.stderr
    missing = server.cli("release", "show", "999")
    assert missing.returncode == 5 and "no release 999" in missing.stderr
    unknown = server.cli("release", "create", "db@1.0", "--reason", "r")
    assert unknown.returncode == 2 and "no service named 'db'" in unknown.stderr


@one_backend  # what the CLI prints and exits with (the engine on both: tests/integration)
def test_cancel_from_the_cli(project, server):
    write_config(
        project,
        """\
        version: 1
        environments: [{name: staging}]
        services:
          api:
            deploy:
              - {name: slow, run: "sleep 30"}
        """,
    )
    server.start()
    release_id = server.create("api@1.0.0", reason="r")  # set-up: `create` is proven above
    time.sleep(0.5)
    looked = server.cli("release", "watch", release_id, "--timeout", "0")  # look once
    assert looked.returncode == 8, looked.stdout + looked.stderr
    assert f"release {release_id} is still running after 0s" in looked.stderr
    cancelled = server.cli("release", "cancel", release_id, "--reason", "wrong build")
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    watch = server.cli("release", "watch", release_id, "--timeout", "30")
    assert watch.returncode == 1 and "cancelled" in watch.stdout
    looked = server.cli("release", "watch", release_id, "--timeout", "0")
    assert looked.returncode == 1 and f"release {release_id} cancelled" in looked.stdout
    [deployment] = server.release(release_id)["deployments"]
    assert deployment["services"] == {"api": "cancelled"}  # not "deploying"
    again = server.cli("release", "cancel", release_id)
    assert again.returncode == 6 and "already ended" in again.stderr


@one_backend  # what the CLI prints and exits with (the engine on both: tests/integration)
def test_config_reload_by_command_and_sighup(project, server):
    import signal

    path = write_config(project, APPEND)
    server.start()
    assert server.json("config", "show")["version"] == 1
    path.write_text(APPEND.replace("  - name: dev\n", ""))
    reloaded = server.json("config", "reload")
    assert (reloaded["version"], reloaded["changed"], reloaded["pending"]) == (2, True, None)
    assert [(c["change"], c["what"], c["name"]) for c in reloaded["changes"]] == [
        ("removed", "environment", "dev")
    ]
    path.write_text("version: 1\nservices: {}\n")
    refused = server.cli("config", "reload")
    assert refused.returncode == 2 and "environments" in refused.stderr
    assert server.json("config", "show")["version"] == 2
    path.write_text(APPEND)
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while server.api("GET", "/config")["version"] != 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.json("config", "show")["version"] == 3
    created = server.release(server.create("api@2.0.0", reason="r"))
    assert created["environments"] == ["dev", "staging", "production"]


@one_backend  # what the CLI prints and exits with (the engine on both: tests/integration)
def test_a_bad_config_stops_the_server_with_its_errors(project, server):
    write_config(project, "version: 1\nenvironments: [{name: dev}]\nservices: {}\n")
    server.start(wait=False)
    assert server.process.wait(120) == 2  # an upper bound: it exits at start
    assert "services" in server.log() and "Traceback" not in server.log()
