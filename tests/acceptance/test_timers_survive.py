"""kill -9 the server during a soak: after the restart the soak goes on from where it began."""

from __future__ import annotations

from tests.helpers import wait_for, write_config

CONFIG = """\
version: 1
environments:
  - name: production
    gates:
      after:
        - soak:
            duration: 6s
            interval: 500ms
            checks: [{check: {run: "echo probe >> probes.log"}}]
services:
  api:
    deploy: [{name: roll-out, run: "echo deployed >> story.log", idempotent: true}]
"""


def _soak(server, release_id: str) -> dict | None:
    shown = server.release(release_id)  # no CLI run at each look
    for deployment in shown["deployments"]:
        for step in deployment["steps"]:
            if step["kind"] == "gate" and step["executor"] == "soak":
                return step
    return None


def test_a_soak_survives_kill_9_and_is_not_started_over(project, server):
    write_config(project, CONFIG)
    server.start()
    release_id = server.create("api@1.0.0", reason="T-1")
    before = wait_for(
        lambda: (s := _soak(server, release_id)) and (s["detail"] or {}).get("soak_started") and s,
        message="the soak to begin",
    )
    began = before["detail"]["soak_started"]
    server.kill()
    server.start()
    watched = server.cli("release", "watch", release_id, "--timeout", "60")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    after = _soak(server, release_id)
    assert after["state"] == "succeeded"
    # The soak kept the start it had before the crash: the restart did not begin it again.
    assert after["detail"]["soak_started"] == began
    assert len((project / "probes.log").read_text().splitlines()) >= 2  # the checks ran
    assert (project / "story.log").read_text().splitlines() == ["deployed"]
