"""Incidents opened by hand: the deployment given is of that environment and names the service."""

from __future__ import annotations

import json

import pytest

from interlock.domain.states import ReleaseState
from interlock.engine import incidents, views
from interlock.errors import InvalidInput, NotFound
from tests.helpers import running, wait_release_end

CONFIG = """\
version: 1
environments:
  - name: staging
  - name: production
    production: true
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
  web: {deploy: [{name: roll-out, run: "true"}]}
"""


def deployments(pilot, *refs: str) -> dict[str, int]:
    """Release ``refs`` to staging then production; the deployment id per environment."""
    done = wait_release_end(pilot.engine, pilot.release(*refs).id)
    assert done.state is ReleaseState.SUCCEEDED
    view = views.release_view(pilot.engine, done.id)
    return {dv.deployment.environment: dv.deployment.id for dv in view.deployments}


def open_(pilot, **kwargs):
    return incidents.open_incident(
        pilot.engine, actor="carol", environment="production", summary="errors up", **kwargs
    )


def test_a_deployment_of_another_environment_is_refused(pilot):
    pilot.config(CONFIG)
    with running(pilot.engine):
        ids = deployments(pilot, "api@1")
    with pytest.raises(InvalidInput) as refused:
        open_(pilot, service="api", deployment_id=ids["staging"])
    assert refused.value.extra["field"] == "deployment"
    assert f"deployment {ids['staging']} ran in staging, not in production" in str(refused.value)
    assert incidents.incidents(pilot.engine) == []


def test_the_service_comes_from_the_deployment_given(pilot):
    pilot.config(CONFIG)
    with running(pilot.engine):
        ids = deployments(pilot, "api@1")
    opened = open_(pilot, service=None, deployment_id=ids["production"])
    assert opened.service == "api" and opened.deployment_id == ids["production"]
    assert opened.release_id is not None
    [audited] = views.audit_events(pilot.engine, actions=["incident.opened"])
    assert json.loads(audited.body)["data"]["service"] == "api"


def test_a_deployment_of_several_services_needs_the_service_named(pilot):
    pilot.config(CONFIG)
    with running(pilot.engine):
        ids = deployments(pilot, "api@1", "web@1")
    with pytest.raises(InvalidInput, match="deployed api, web; say which service") as refused:
        open_(pilot, service=None, deployment_id=ids["production"])
    assert refused.value.extra["field"] == "service"
    opened = open_(pilot, service="web", deployment_id=ids["production"])
    assert opened.service == "web" and opened.deployment_id == ids["production"]


def test_a_deployment_that_does_not_exist_is_not_found(pilot):
    pilot.config(CONFIG)
    with pytest.raises(NotFound, match="no deployment 999") as missing:
        open_(pilot, service="api", deployment_id=999)
    assert missing.value.extra["field"] == "deployment"


def test_the_service_taken_from_the_deployment_is_authorised_too(pilot):
    from tests.support.api import Api

    path = pilot.config(
        CONFIG.replace(
            "environments:",
            "permissions:\n  - {user: wes, allow: [incident.manage], services: [web]}\n"
            "environments:",
        )
    )
    api = Api(pilot.engine, pilot.configs, path, workers=1).start()
    try:
        ids = deployments(pilot, "api@1")
        wes = api.user("wes")
        body = {"environment": "production", "summary": "errors up"}
        # wes may manage web's incidents; a deployment of api does not make it web's.
        refused = wes.post("/api/v1/incidents", json={**body, "deployment": ids["production"]})
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "api" in refused.json()["detail"]
        assert incidents.incidents(pilot.engine) == []
        web = deployments(pilot, "web@1")
        allowed = wes.post("/api/v1/incidents", json={**body, "deployment": web["production"]})
        assert allowed.status_code == 201, allowed.text
        assert allowed.json()["service"] == "web"
    finally:
        api.stop()


def test_a_fix_resolves_every_open_incident_of_its_service_however_many(pilot):
    """Resolution read the open incidents 100 at a time: the 101st stayed open."""
    pilot.config(CONFIG)
    with pilot.engine.db.transaction() as tx:
        for n in range(101):
            tx.open_incident(
                service="api",
                environment="production",
                summary=f"alert {n}",
                at=pilot.engine.clock.now(),
                by="pager",
                deployment_id=None,
                release_id=None,
            )
    with running(pilot.engine):
        deployments(pilot, "api@2")
    assert incidents.incidents(pilot.engine, state="open", limit=1000) == []
    assert len(incidents.incidents(pilot.engine, state="resolved", limit=1000)) == 101
