"""`release watch`, `show` and `logs` tell the truth, through the real command and server.

A rollback chosen with `resolve --rollback` is followed to its end; a polled gate
counts its tries; `show` prints the ids `resolve` takes and every wait; `logs --step`
reaches gates and the runbook runs a pipeline started; `--at` in the past is refused.
"""

from __future__ import annotations

import re
import subprocess
import threading

from tests.acceptance.conftest import one_backend
from tests.helpers import wait_for, write_config
from tests.support.server import INTERLOCK

# What `watch`, `show` and `logs` print: on one backend (the engine's behaviour on
# both is tests/integration's).
pytestmark = one_backend

ROLLBACK = """\
version: 1
environments:
  - name: production
    on_failure: pause
services:
  api:
    deploy:
      - name: roll-out
        run: >-
          while [ -f hold-{{ version }} ]; do sleep 0.05; done;
          echo {{ version }} > current.txt;
          test ! -f fail-{{ version }}
        idempotent: true
"""


def _release(server, version: str) -> str:
    """Set-up: a release through the API (`release create` is proven below)."""
    return server.create(f"api@{version}", reason=f"v{version}")


def test_watch_follows_a_rollback_that_resolve_started_to_its_end(project, server):
    write_config(project, ROLLBACK)
    server.start()
    assert server.wait_release(_release(server, "1"))["state"] == "succeeded"
    (project / "fail-2").touch()
    release_id = _release(server, "2")
    paused = server.wait_release(release_id, timeout=30)
    assert paused["state"] == "needs_attention", paused
    [step] = paused["deployments"][0]["steps"]

    # `release show` prints the step's id, and says what to run with it.
    shown = server.cli("release", "show", release_id).stdout
    assert re.search(rf"^\s*{step['id']}\s+api/roll-out\s+needs_attention", shown, re.M), shown
    assert f"production/api/roll-out (step id {step['id']}) needs a person" in shown
    assert f"`interlock resolve {step['id']} --retry|--skip|--fail|--rollback" in shown

    (project / "hold-1").touch()  # the rollback (to 1) runs until the test lets it end
    decided = server.cli("resolve", str(step["id"]), "--rollback", "--reason", "errors up")
    assert decided.returncode == 0, decided.stderr
    lines: list[str] = []
    with subprocess.Popen(
        [INTERLOCK, "release", "watch", release_id],
        cwd=project,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as watch:
        reader = threading.Thread(target=lambda: lines.extend(watch.stdout or ()), daemon=True)
        reader.start()
        try:
            wait_for(lambda: any("rolling_back" in line for line in lines), 30, message="a line")
            shown_json = server.release(release_id)
            assert shown_json["state"] == "running"  # nothing waits on a person any more
            assert shown_json["deployments"][0]["state"] == "rolling_back"
            assert watch.poll() is None, "".join(lines)  # still watching the rollback
            (project / "hold-1").unlink()
            assert watch.wait(60) == 1, "".join(lines)
        finally:
            if watch.poll() is None:
                watch.kill()
        reader.join(10)
    output = "".join(lines)
    assert f"release {release_id} failed" in output
    assert "rolled back: api is back on 1" in output
    assert (project / "current.txt").read_text().strip() == "1"


POLLED = """\
version: 1
environments:
  - name: staging
    gates:
      before:
        - check:
            run: >-
              n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries;
              echo "look $n"; [ $n -ge 3 ]
            interval: 0.1
            timeout: 60s
services:
  api:
    deploy:
      - {name: maintenance, runbook: vacuum}
runbooks:
  vacuum:
    steps:
      - {name: prepare, run: "echo preparing the vacuum"}
"""


def test_a_polled_gate_counts_tries_and_logs_reach_gates_and_runbooks(project, server):
    write_config(project, POLLED)
    server.start()
    created = server.cli("release", "create", "api@1", "--reason", "v1", "--watch", timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    watched = created.stdout
    assert "check  running (try 2)" in watched, watched
    assert "check  running (try 3)" in watched, watched
    assert "worker was lost" not in watched, watched
    assert not re.search(r"gate/check .*\d/1\)", watched), watched  # not "4 of 1"
    release_id = watched.split()[0]

    shown = server.cli("release", "show", release_id).stdout
    assert re.search(r"\s+gate/check\s+succeeded\s+3\s", shown), shown
    assert "3/1" not in shown

    gate = server.cli("release", "logs", release_id, "--step", "check")
    assert gate.returncode == 0, gate.stderr
    assert "==> staging/gate/check (attempt 3) <==" in gate.stdout
    assert "look 3" in gate.stdout
    first = server.cli("release", "logs", release_id, "--step", "check", "--attempt", "1")
    assert "look 1" in first.stdout and "look 3" not in first.stdout

    runbook = server.cli("release", "logs", release_id, "--step", "maintenance")
    assert runbook.returncode == 0, runbook.stderr
    assert "==> staging/api/maintenance > prepare (attempt 1) <==" in runbook.stdout
    assert "preparing the vacuum" in runbook.stdout

    past = server.cli(
        "release", "create", "api@2", "--reason", "v2", "--at", "2020-01-01T09:00:00Z"
    )
    assert past.returncode == 2, past.stdout + past.stderr
    assert "2020-01-01T09:00:00+00:00 is in the past" in past.stderr
    assert "leave it out to start now, or give a time to come" in past.stderr
    assert server.api("GET", "/releases")["items"][0]["id"] == int(release_id)


SIGNOFF = """\
version: 1
roles: {dba: [dora]}
permissions:
  - {user: dora, allow: [read, runbook.sign]}
environments: [{name: production}]
services:
  api:
    deploy:
      - name: migrate
        manual: {instructions: "Run the schema migration", role: dba}
"""


def test_a_manual_step_waits_on_whoever_can_sign_it(project, server):
    write_config(project, SIGNOFF)
    server.start()
    dora = server.user("dora")
    release_id = _release(server, "1")
    wait_for(lambda: server.waits(release_id), 30, message="the manual step to wait")
    deployment = server.release(release_id)["deployments"][0]["id"]
    shown = server.cli("release", "show", release_id).stdout
    assert (
        "production/api/migrate waits for role dba to sign off: Run the schema migration; "
        f"can sign: dora (`interlock runbook sign {deployment} migrate`)"
    ) in shown

    watched = server.cli("release", "watch", release_id, "--timeout", "0")
    assert watched.returncode == 8, watched.stderr
    assert "] waiting: production/api/migrate waits for role dba to sign off" in watched.stdout

    mine = server.cli("approvals", INTERLOCK_TOKEN=dora)
    assert mine.returncode == 0, mine.stderr
    assert "api/migrate" in mine.stdout
    assert f"sign-off by role dba: interlock runbook sign {deployment} migrate" in mine.stdout
    assert server.api("GET", "/approvals/pending")["items"] == []  # the admin is not in dba

    signed = server.cli("runbook", "sign", str(deployment), "migrate", INTERLOCK_TOKEN=dora)
    assert signed.returncode == 0, signed.stderr
    assert server.cli("release", "watch", release_id).returncode == 0
    assert server.api("GET", "/approvals/pending", token=dora)["items"] == []
