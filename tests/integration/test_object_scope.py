"""Every object is scoped: an action by id reaches only what its permission covers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from interlock.engine.recovery import recover
from interlock.engine.steps import claim
from tests.support.api import Api, served

CONFIG = """\
version: 1
teams: {payments: [dave], search: [sam]}
permissions:
  - {team: payments, allow: [release.create, rollback, incident.manage, lock, runbook.run],
     services: owned}
  - {team: search, allow: [release.create, rollback, incident.manage, lock], services: owned}
  - {user: oncall, allow: [incident.manage, lock], environments: [production]}
  - {user: ops, allow: [runbook.run], environments: [staging]}
  - {user: lead, allow: [all], services: [api]}
runbooks:
  migrate:
    steps: [{name: once, run: "echo ran >> runs.log", idempotent: false}]
environments:
  - name: staging
  - name: production
services:
  api: {owner: payments, deploy: [{name: roll-out, run: "true"}]}
  search: {owner: search, deploy: [{name: roll-out, run: "true"}]}
"""


@pytest.fixture
def api(pilot) -> Iterator[Api]:
    with served(pilot, CONFIG) as api:
        yield api


def test_a_runbook_step_is_resolved_only_under_the_runbooks_permission(pilot, api):
    ops = api.user("ops")
    run = ops.post("/api/v1/runbooks/migrate/runs", json={"environment": "staging"}).json()
    # its worker dies holding the step, which is not idempotent: a person decides
    assert pilot.engine.db.run(lambda tx: claim(tx, pilot.engine, "host:1:dead-0"))
    assert recover(pilot.engine, everything=True) == [("once", "needs_attention")]
    step = run["steps"][0]["id"]
    retry = {"action": "retry", "reason": "run it again"}
    # rollback on one's own services does not reach a runbook's step by its id
    sam = api.user("sam")
    refused = sam.post(f"/api/v1/steps/{step}/resolve", json=retry)
    assert refused.status_code == 404, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert sam.get(f"/api/v1/steps/{step}").status_code == 404
    shown = ops.get(f"/api/v1/steps/{step}").json()
    assert shown["state"] == "needs_attention"
    assert ops.post(f"/api/v1/steps/{step}/resolve", json=retry).status_code == 200


def test_who_runs_runbooks_in_some_environments_sees_the_runs_they_start(pilot, api):
    ops = api.user("ops")
    run = ops.post("/api/v1/runbooks/migrate/runs", json={"environment": "staging"})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    assert [r["id"] for r in ops.get("/api/v1/runbook-runs").json()["items"]] == [run_id]
    assert ops.get(f"/api/v1/runbook-runs/{run_id}").status_code == 200
    assert ops.get(f"/api/v1/deployments/{run_id}").status_code == 200
    # a run elsewhere is not theirs to see
    elsewhere = api.admin().post(
        "/api/v1/runbooks/migrate/runs", json={"environment": "production"}
    )
    other = elsewhere.json()["id"]
    assert ops.get(f"/api/v1/runbook-runs/{other}").status_code == 404
    assert [r["id"] for r in ops.get("/api/v1/runbook-runs").json()["items"]] == [run_id]
    # who holds no runbook rule: the same 404, not a 403 that tells the id exists
    assert api.user("sam").get(f"/api/v1/runbook-runs/{run_id}").status_code == 404
    assert api.user("sam").get("/api/v1/runbook-runs").json()["items"] == []


def test_an_incident_about_no_service_needs_permission_for_every_service(pilot, api):
    dave, oncall = api.user("dave"), api.user("oncall")
    unscoped = {"environment": "production", "summary": "payments are slow"}
    refused = dave.post("/api/v1/incidents", json=unscoped)
    assert refused.status_code == 403, refused.text
    assert "every service" in refused.json()["detail"]
    opened = oncall.post("/api/v1/incidents", json=unscoped)
    assert opened.status_code == 201, opened.text
    resolve = dave.post(f"/api/v1/incidents/{opened.json()['id']}/resolve", json={"note": "x"})
    assert resolve.status_code == 403
    own = dave.post("/api/v1/incidents", json={**unscoped, "service": "api"})
    assert own.status_code == 201
    assert (
        api.admin().get("/api/v1/incidents?state=open").json()["items"][0]["id"] == own.json()["id"]
    )


def test_an_incident_is_not_linked_to_another_services_deployment(pilot, api):
    theirs = api.user("sam").post(
        "/api/v1/releases", json={"services": ["search@1.0.0"], "reason": "r"}
    )
    deployment = theirs.json()["deployments"][0]["id"]
    linked = api.user("dave").post(
        "/api/v1/incidents",
        json={
            "environment": "staging",
            "service": "api",
            "summary": "blame search",
            "deployment": deployment,
        },
    )
    assert linked.status_code == 422, linked.text
    assert linked.json()["field"] == "deployment"


def test_a_runbook_run_is_not_attached_to_an_incident_one_cannot_see(pilot, api):
    incident = api.user("sam").post(
        "/api/v1/incidents",
        json={"environment": "staging", "service": "search", "summary": "down"},
    )
    attached = api.user("dave").post(
        "/api/v1/runbooks/migrate/runs",
        json={"environment": "staging", "incident": incident.json()["id"]},
    )
    assert attached.status_code == 404, attached.text


def test_locking_an_environment_needs_permission_for_every_service(pilot, api):
    dave, oncall = api.user("dave"), api.user("oncall")
    refused = dave.post("/api/v1/environments/production/lock", json={"reason": "mine"})
    assert refused.status_code == 403, refused.text
    assert api.admin().get("/api/v1/environments/locks").json() == []
    assert (
        oncall.post("/api/v1/environments/production/lock", json={"reason": "db"}).status_code
        == 200
    )
    assert dave.delete("/api/v1/environments/production/lock").status_code == 403


def test_a_rule_scoped_to_services_does_not_reach_the_whole_server(pilot, api):
    lead = api.user("lead")
    made = lead.post("/api/v1/releases", json={"services": ["api@1.0.0"], "reason": "r"})
    assert made.status_code == 201, made.text
    for method, path in (
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/config"),
        ("POST", "/api/v1/config/reload"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks/audit/retry"),
        ("GET", "/api/v1/users/dave/tokens"),
    ):
        body = {"name": "newcomer"} if path == "/api/v1/users" else None
        refused = lead.request(method, path, json=body)
        assert refused.status_code == 403, (method, path, refused.text)
