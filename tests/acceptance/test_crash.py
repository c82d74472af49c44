"""kill -9 the server while a step runs; restart it: nothing lost, nothing run twice unsafely."""

from __future__ import annotations

import time

from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
environments: [{{name: staging}}, {{name: production}}]
services:
  api:
    deploy:
      - name: long
        run: >-
          echo "start {{{{ environment }}}} $INTERLOCK_ATTEMPT" >> runs.log;
          while [ ! -f go ]; do sleep 0.05; done; echo "end {{{{ environment }}}}" >> runs.log
        idempotent: {idempotent}
      - name: after
        run: echo "after {{{{ environment }}}}" >> runs.log
"""


def _runs(project) -> list[str]:
    path = project / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def _crash_during_the_first_step(project, server, idempotent: bool) -> str:
    write_config(project, CONFIG.format(idempotent="true" if idempotent else "false"))
    server.start()
    release_id = server.create("api@1.0.0", reason="crash test")  # set-up: through the API
    wait_for(
        lambda: any(line.startswith("start staging") for line in _runs(project)),
        message="the step to start",
    )
    server.kill()  # its steps' supervisors see it go and stop them
    (project / "go").touch()  # from now on the step ends at once (the second try)
    server.start()
    return release_id


def test_an_idempotent_step_runs_again_and_the_release_completes(project, server):
    release_id = _crash_during_the_first_step(project, server, idempotent=True)
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 0, watch.stdout + watch.stderr + server.log()
    runs = _runs(project)
    assert [r for r in runs if r.startswith("start staging")] == [
        "start staging 1",
        "start staging 2",
    ]
    assert runs[-1] == "after production"
    shown = server.release(release_id)
    step = shown["deployments"][0]["steps"][0]
    assert [a["outcome"] for a in step["attempts"]] == ["lost", "succeeded"]
    assert server.api("GET", "/audit/verify")["ok"]
    actions = [e["action"] for e in server.api("GET", "/audit", limit=1000)["items"]]
    assert "step.recovered" in actions


def test_a_non_idempotent_step_needs_attention_and_ran_once(project, server):
    release_id = _crash_during_the_first_step(project, server, idempotent=False)
    watch = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watch.returncode == 7, watch.stdout + watch.stderr
    assert "needs_attention" in watch.stdout
    time.sleep(1)
    assert [r for r in _runs(project) if r.startswith("start")] == ["start staging 1"]
    shown = server.release(release_id)
    assert shown["state"] == "needs_attention"
    step = shown["deployments"][0]["steps"][0]
    assert step["state"] == "needs_attention" and "not idempotent" in step["error"]
    assert server.api("GET", "/audit/verify")["ok"]
