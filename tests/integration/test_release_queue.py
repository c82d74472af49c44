"""A release queued behind a paused deployment says what it waits on (API and `release show`)."""

from __future__ import annotations

import os
import subprocess

from interlock.domain.states import ReleaseState
from interlock.engine import views
from tests.helpers import running, wait_for
from tests.support.api import Api
from tests.support.server import INTERLOCK

CONFIG = """\
version: 1
environments: [{name: dev, on_failure: pause}]
services:
  svc: {deploy: [{name: broken, run: "exit 3"}]}
"""


def test_a_release_queued_behind_a_paused_deployment_says_what_it_waits_on(pilot):
    path = pilot.config(CONFIG)
    with running(pilot.engine):
        first = pilot.release("svc@1.0.0")
        wait_for(
            lambda: (
                views.release_view(pilot.engine, first.id).release.state
                is ReleaseState.NEEDS_ATTENTION
            ),
            message="the first release to need attention",
        )
        second = pilot.release("svc@1.1.0")
        api = Api(pilot.engine, pilot.configs, path, workers=0).start()
        try:
            client = api.admin()
            paused = views.release_view(pilot.engine, first.id).deployments[0]
            [step] = paused.nodes
            found = client.get(f"/api/v1/releases/{second.id}").json()
            assert found["state"] == "running"
            [entry] = found["queued_behind"]
            assert entry["deployment"] == paused.deployment.id
            assert (entry["release"], entry["state"]) == (first.id, "needs_attention")
            assert entry["services"] == ["svc"] and entry["environment"] == "dev"
            assert entry["detail"] == (
                f"queued behind deployment {paused.deployment.id} (release {first.id}) of svc "
                f"in dev, which is paused for a person at step svc/broken (id {step.id}): it "
                "needs attention (`interlock resolve` retries, skips or fails it; cancelling "
                "its release frees the queue)"
            )
            assert client.get(f"/api/v1/releases/{first.id}").json()["queued_behind"] == []
            # A lock of the environment holds it too, and says so first.
            assert client.post(
                "/api/v1/environments/dev/lock", json={"reason": "INC-7: freeze"}
            ).is_success
            lock, ahead = client.get(f"/api/v1/releases/{second.id}").json()["queued_behind"]
            since = lock["lock"].pop("since")
            assert lock["lock"] == {"by": "root", "reason": "INC-7: freeze"}
            assert ahead == entry
            # The same, as the release's waits: the lock (who, why, since), then the
            # deployment ahead, paused at a step whose id `resolve` takes.
            waits = client.get(f"/api/v1/releases/{second.id}").json()["waits"]
            assert [w["kind"] for w in waits] == ["lock", "paused"]
            assert (waits[0]["by"], waits[0]["reason"], waits[0]["since"]) == (
                "root",
                "INC-7: freeze",
                since,
            )
            assert (waits[1]["behind_deployment"], waits[1]["behind_release"]) == (
                paused.deployment.id,
                first.id,
            )
            assert (waits[1]["paused_step_id"], waits[1]["paused_step"]) == (step.id, "svc/broken")
            assert waits[0]["summary"] == (
                f"dev is locked by root: INC-7: freeze (since {since[:19]}+00:00; it starts once "
                "the lock is lifted)"
            )
            assert waits[1]["summary"] == entry["detail"]
            [attention] = client.get(f"/api/v1/releases/{first.id}").json()["waits"]
            assert (attention["kind"], attention["step_id"]) == ("attention", step.id)
            assert f"interlock resolve {step.id} " in attention["resolve"]
            env = {**os.environ, "INTERLOCK_URL": api.url, "INTERLOCK_TOKEN": api.secrets["root"]}
            shown = subprocess.run(
                [INTERLOCK, "release", "show", str(second.id)],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert shown.returncode == 0, shown.stderr
            assert "  queued:   dev is locked by root: INC-7: freeze" in shown.stdout
            assert f"  queued:   queued behind deployment {paused.deployment.id}" in shown.stdout
        finally:
            api.stop()
