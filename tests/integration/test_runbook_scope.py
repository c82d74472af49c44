"""Runbook people see runbook runs, not every release; signing does not probe ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.support.api import Api, served

CONFIG = """\
version: 1
teams: {payments: [dave], search: [sam]}
roles: {oncall: [olga, rita]}
permissions:
  - {user: rita, allow: [read]}
  - {team: payments, allow: [release.create, read], services: owned}
  - {team: search, allow: [release.create], services: owned}
  # as runbook rules are usually written: no services (runbooks belong to no team)
  - {role: oncall, allow: [runbook.run, runbook.sign]}
  - {user: ops, allow: [runbook.run], environments: [staging]}
runbooks:
  check:
    steps:
      - {name: confirm, manual: {role: oncall, instructions: "look at the graphs"}}
environments:
  - name: staging
  - name: production
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "echo rolled out"}]}
  search: {owner: search, deploy: [{name: roll-out, run: "true"}]}
  db: {owner: payments, deploy: [{name: check, manual: {role: oncall, instructions: "look"}}]}
  schema: {owner: payments, deploy: [{name: migrate, runbook: check}]}
"""


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    with served(pilot, CONFIG, driven=True) as api:
        yield api


def _release(api: Api) -> dict:
    made = api.user("dave").post("/api/v1/releases", json={"services": ["api@1.0"], "reason": "r"})
    assert made.status_code == 201, made.text
    return made.json()


def _waiting_run(client, environment: str) -> dict:
    started = client.post("/api/v1/runbooks/check/runs", json={"environment": environment})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    return wait_for(
        lambda: (
            (r := client.get(f"/api/v1/runbook-runs/{run_id}").json())["steps"][0]["state"]
            == "waiting"
            and r
        )
    )


def test_who_runs_and_signs_runbooks_reads_their_runs_not_every_release(pilot, api):
    release = _release(api)
    deployment = release["deployments"][0]
    step = deployment["steps"][0]["id"]
    olga = api.user("olga")
    for path in (
        f"/api/v1/releases/{release['id']}",
        f"/api/v1/releases/{release['id']}/logs",
        f"/api/v1/releases/{release['id']}/notes",
        f"/api/v1/deployments/{deployment['id']}",
        f"/api/v1/steps/{step}",
        f"/api/v1/steps/{step}/logs",
        "/api/v1/artifacts/api/1.0",
    ):
        hidden = olga.get(path)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.headers["content-type"] == "application/problem+json"
    assert olga.get("/api/v1/releases").json()["items"] == []
    assert "api" not in olga.get("/api/v1/status").json()["services"]
    # the runs are theirs to see: the run, its deployment, its steps and their logs
    run = _waiting_run(olga, "production")
    run_step = run["steps"][0]["id"]
    for path in (
        f"/api/v1/runbook-runs/{run['id']}",
        f"/api/v1/deployments/{run['id']}",
        f"/api/v1/steps/{run_step}",
        f"/api/v1/steps/{run_step}/logs",
    ):
        assert olga.get(path).status_code == 200, path
    listed = olga.get("/api/v1/deployments").json()["items"]
    assert [d["id"] for d in listed] == [run["id"]]
    # and the release's owners still read their release, as before
    assert api.user("dave").get(f"/api/v1/releases/{release['id']}").status_code == 200


def test_signing_answers_alike_for_what_is_missing_and_what_is_hidden(pilot, api):
    production = _waiting_run(api.admin(), "production")
    release = _release(api)
    ops, sam = api.user("ops"), api.user("sam")  # runbook.run in staging only; no runbook rule

    def sign(client, run_id: int, step: str):
        return client.post(f"/api/v1/runbook-runs/{run_id}/steps/{step}/sign", json={})

    # a run ops may not see: its real step, a made-up step, a release's deployment, and
    # a run that does not exist all answer the same 404
    for run_id, step in (
        (production["id"], "confirm"),
        (production["id"], "nope"),
        (release["deployments"][0]["id"], "roll-out"),
        (999999, "confirm"),
    ):
        hidden = sign(ops, run_id, step)
        assert hidden.status_code == 404, hidden.text
        assert hidden.json()["detail"] == f"no run {run_id}"
    # a run ops sees (their own): no runbook.sign is 403 whatever the step's name
    own = _waiting_run(ops, "staging")
    for step in ("confirm", "nope"):
        refused = sign(ops, own["id"], step)
        assert refused.status_code == 403, refused.text
        assert "runbook.sign" in refused.json()["detail"]
    # who may see no run at all hears 404 too, for every id alike
    assert {sign(sam, i, "confirm").status_code for i in (production["id"], 999999)} == {404}
    # who holds runbook.sign and is in the role signs it
    signed = sign(api.user("olga"), production["id"], "confirm")
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "succeeded"


def test_a_manual_step_of_a_release_is_signed_by_who_may_read_the_release(pilot, api):
    dave = api.user("dave")
    made = dave.post("/api/v1/releases", json={"services": ["db@1.0"], "reason": "r"}).json()
    deployment = made["deployments"][0]["id"]
    wait_for(
        lambda: (
            dave.get(f"/api/v1/deployments/{deployment}").json()["steps"][0]["state"] == "waiting"
        )
    )
    path = f"/api/v1/runbook-runs/{deployment}/steps/check/sign"
    hidden = api.user("olga").post(path, json={})  # runbook.sign, in the role, no read
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"no run {deployment}"
    signed = api.user("rita").post(path, json={"comment": "looked"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["state"] == "succeeded"


def test_a_run_a_release_started_is_read_by_who_reads_the_release_and_hidden_alike(pilot, api):
    """A pipeline step's runbook run (created by "interlock") is part of the release."""
    dave, sam = api.user("dave"), api.user("sam")  # payments reads schema; search does not
    made = dave.post("/api/v1/releases", json={"services": ["schema@1.0"], "reason": "r"})
    assert made.status_code == 201, made.text
    admin = api.admin()
    child = wait_for(lambda: next(iter(admin.get("/api/v1/runbook-runs").json()["items"]), None))
    assert child["created_by"] == "interlock"
    run = wait_for(
        lambda: (
            (r := admin.get(f"/api/v1/runbook-runs/{child['id']}").json())["steps"][0]["state"]
            == "waiting"
            and r
        )
    )
    step = run["steps"][0]["id"]
    paths = (
        f"/api/v1/runbook-runs/{child['id']}",
        f"/api/v1/deployments/{child['id']}",
        f"/api/v1/steps/{step}",
        f"/api/v1/steps/{step}/logs",
    )
    for reader in (dave, api.user("rita")):  # no runbook rule, but they read the release
        for path in paths:
            assert reader.get(path).status_code == 200, path
        listed = reader.get("/api/v1/runbook-runs").json()["items"]
        assert [r["id"] for r in listed] == [child["id"]]
    # who may not read the release: the same 404 as for a run that does not exist
    for path in (*paths, "/api/v1/runbook-runs/999999"):
        hidden = sam.get(path)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.headers["content-type"] == "application/problem+json"
    assert sam.get("/api/v1/runbook-runs").json()["items"] == []
