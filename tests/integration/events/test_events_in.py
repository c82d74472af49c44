"""CDEvents in: every conformance example of the accepted types, validation, signed sources."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest

from interlock.engine import incidents as incidents_engine
from interlock.engine import views
from tests.support.api import Api
from tests.support.external import conformance, conformance_names

CI_SECRET = "ci-events-secret"
OCI_DIGEST = "sha256:0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
CONFIG = """\
version: 1
environments: [{name: staging}, {name: production, production: true}]
services:
  api: {deploy: [{name: roll-out, run: "true"}]}
permissions:
  - {user: ci, allow: [artifact.register, incident.manage]}
  - {user: viewer, allow: [read]}
notifications:
  inbound:
    - {name: ci-signer, secret: "${CI_EVENTS_SECRET}", as: ci}
  services: {myapp: api, mySubject123: api, myApp: api}
  environments: {test123: staging, prod1: production}
"""
ACCEPTED = [
    "artifact_published",
    "artifact_packaged",
    "service_deployed",
    "service_upgraded",
    "service_rolledback",
    "incident_detected",
    "incident_reported",
    "incident_resolved",
]


@pytest.fixture
def api(pilot: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CI_EVENTS_SECRET", CI_SECRET)
    path = pilot.config(CONFIG)
    harness = Api(pilot.engine, pilot.configs, path, workers=0).start()
    harness.user("ci", kind="service")  # the account the signed source acts as
    yield harness
    harness.stop()


def post(client: Any, event: Any, content_type: str = "application/json") -> Any:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return client.post("/api/v1/events", content=body, headers={"content-type": content_type})


def incidents(api: Any) -> list[Any]:
    with api.engine.db.read() as tx:
        return tx.list_incidents(limit=None)


def test_every_conformance_example_of_the_accepted_types_is_accepted(api):
    ci = api.user("ci", kind="service")
    admin = api.admin()
    # Artifacts: the examples' purl names no digest, so nothing can be pinned: accepted, not
    # registered, and the answer says why. With a checksum qualifier the same event registers.
    for name in ("artifact_published", "artifact_packaged"):
        answer = post(ci, conformance(name))
        assert answer.status_code == 202, answer.text
        assert answer.json()["outcome"] == "ignored" and "digest" in answer.json()["detail"]
        event = conformance(name)
        event["subject"]["id"] += f"?checksum={OCI_DIGEST.replace('0b31', 'a1b2')}"
        answer = post(ci, event)
        assert answer.status_code == 200, answer.text
        assert answer.json()["artifact"] == {
            "service": "api",
            "version": "234fd47e07d1004f0aed9c",
            "digest": OCI_DIGEST.replace("0b31", "a1b2"),
        }
    # Services: the OCI digest in artifactId names a registered artifact → an observation.
    assert admin.post(
        "/api/v1/artifacts", json={"service": "api", "version": "1.4.2", "digest": OCI_DIGEST}
    ).is_success
    for name in ("service_deployed", "service_upgraded", "service_rolledback"):
        answer = post(ci, conformance(name))
        assert answer.status_code == 200, answer.text
        assert answer.json()["outcome"] == "observed"
        assert answer.json()["detail"] == "api@1.4.2 runs in staging"
    with api.engine.db.read() as tx:
        observed = {(o.service, o.environment): o for o in tx.all_observations()}
    assert observed[("api", "staging")].version == "1.4.2"
    assert observed[("api", "staging")].observed_by == "ci"
    # Incidents: reported (another subject) and detected open one each; resolved closes the
    # one its subject opened, not the other.
    other = conformance("incident_reported")
    other["context"]["id"], other["subject"]["id"] = "another-event", "incident-456"
    assert post(ci, other).json()["outcome"] == "incident opened"
    answer = post(ci, conformance("incident_detected"))
    assert answer.status_code == 200 and answer.json()["outcome"] == "incident opened"
    detected = answer.json()["incident"]
    answer = post(ci, conformance("incident_reported"))  # the same subject, still open
    assert answer.json() | {"detail": None} == {
        "id": "F4BD2B55-B6F6-4F44-AF72-BD2D0E7A8708",
        "type": "dev.cdevents.incident.reported.0.3.0",
        "outcome": "already open",
        "detail": None,
        "incident": detected,
    }
    answer = post(ci, conformance("incident_resolved"))
    assert answer.status_code == 200 and answer.json()["outcome"] == "incident resolved"
    found = {i.id: i for i in incidents(api)}
    assert len(found) == 2
    assert found[detected].state == "resolved" and found[detected].resolved_by == "ci"
    assert found[detected].summary == "Response time above threshold of 100ms"
    assert (found[detected].service, found[detected].environment) == ("api", "production")
    reported = next(i for i in found.values() if i.id != detected)
    assert reported.state == "open"
    assert reported.summary.endswith("https://my-issues.example/incidents/ticket-345")
    # A sender's retry changes nothing twice.
    for name in ACCEPTED[2:]:
        again = post(ci, conformance(name))
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate", name
    assert len(incidents(api)) == 2
    # Every conformance example, of any type, is accepted (acted on, or ignored with a reason).
    for name in conformance_names():
        answer = post(ci, conformance(name))
        assert answer.status_code in (200, 202), (name, answer.text)
        if name not in ACCEPTED:
            assert answer.status_code == 202 and "does not act on" in answer.json()["detail"]
    assert views.audit_verify(api.engine).ok


def test_invalid_unknown_and_wrapped_events(api):
    ci = api.user("ci", kind="service")
    broken = conformance("incident_detected")
    del broken["subject"]["content"]["environment"]
    answer = post(ci, broken)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "subject.content.environment"
    assert "required" in answer.json()["detail"]
    wrong_type = copy.deepcopy(conformance("service_deployed"))
    wrong_type["subject"]["content"]["artifactId"] = 42
    assert post(ci, wrong_type).json()["field"] == "subject.content.artifactId"
    assert post(ci, b"{not json").json()["field"] == "body"
    nul = copy.deepcopy(conformance("incident_detected"))
    nul["subject"]["content"]["description"] = "down\x00"
    answer = post(ci, nul)
    assert answer.status_code == 422 and answer.json()["field"] == "subject.content.description"
    assert "control character U+0000" in answer.json()["detail"]
    assert post(ci, {"context": {}}).json()["field"] == "context.type"
    assert post(ci, conformance("service_deployed"), "text/plain").status_code == 415
    too_big = post(ci, b"{" + b" " * (1 << 20) + b"}")
    assert too_big.status_code == 413
    unknown = post(ci, {"context": {"type": "com.example.thing.happened.1.0.0"}})
    assert unknown.status_code == 202 and unknown.json()["outcome"] == "ignored"
    # A structured CloudEvent carries the CDEvent in `data`.
    assert (
        api.admin()
        .post(
            "/api/v1/artifacts", json={"service": "api", "version": "1.4.2", "digest": OCI_DIGEST}
        )
        .is_success
    )
    event = conformance("service_deployed")
    wrapped = {
        "specversion": "1.0",
        "id": event["context"]["id"],
        "source": event["context"]["source"],
        "type": event["context"]["type"],
        "datacontenttype": "application/json",
        "data": event,
    }
    answer = post(ci, wrapped, "application/cloudevents+json; charset=utf-8")
    assert answer.status_code == 200 and answer.json()["outcome"] == "observed"
    # Unmapped names and a service or environment Interlock does not know are ignored.
    stranger = conformance("incident_detected")
    stranger["subject"]["content"]["environment"]["id"] = "moon"
    answer = post(ci, stranger)
    assert answer.status_code == 202 and "moon" in answer.json()["detail"]
    assert incidents(api) == []
    # Permissions still apply to what an event does.
    viewer = api.user("viewer")
    assert post(viewer, conformance("incident_detected")).status_code == 403
    assert incidents(api) == []


def sign(body: bytes, secret: str = CI_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_signed_source_acts_as_its_account_and_a_bad_signature_changes_nothing(api):
    anonymous = api.client(None)
    body = json.dumps(conformance("incident_detected")).encode()

    def send(signature: str | None) -> Any:
        headers = {"content-type": "application/json"}
        if signature is not None:
            headers["x-interlock-signature-256"] = signature
        return anonymous.post("/api/v1/events", content=body, headers=headers)

    def failures() -> list[Any]:
        return views.audit_events(api.engine, actions=["auth.failed"], limit=100)

    before = len(failures())
    for signature in (sign(body, "wrong secret"), sign(body + b" "), "sha256=", "nonsense"):
        answer = send(signature)
        assert answer.status_code == 401, answer.text
        assert "signature" in answer.json()["detail"]
    assert send(None).status_code == 401  # neither a token nor a signature
    assert incidents(api) == []
    refused = failures()[before:]
    # Audited, but at most once a minute per caller and endpoint (and reason).
    assert [(e.object_type, e.object_id) for e in refused].count(("hook", "/api/v1/events")) == 1
    answer = send(sign(body))
    assert answer.status_code == 200, answer.text
    [opened] = incidents(api)
    assert opened.opened_by == "ci"
    # A replay of the signed body: its id, source and type are signed, so it is the same
    # event (another id would need another signature).
    replay = send(sign(body))
    assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate", replay.text
    assert len(incidents(api)) == 1
    # A source whose account does not exist is refused with what to do.
    with api.engine.db.transaction() as tx:
        tx.conn.exec_driver_sql("UPDATE users SET disabled = true WHERE name = 'ci'")
    other = conformance("incident_reported")
    other["context"]["id"], other["subject"]["id"] = "yet-another-event", "incident-789"
    raw = json.dumps(other).encode()
    answer = anonymous.post(
        "/api/v1/events",
        content=raw,
        headers={"content-type": "application/json", "x-interlock-signature-256": sign(raw)},
    )
    assert answer.status_code == 403 and "disabled" in answer.json()["detail"]
    assert len(incidents(api)) == 1


def test_a_resolved_event_finds_its_incident_behind_a_hundred_newer_ones(api):
    """The sender's own incident is found however many open incidents are newer (lists page)."""
    ci = api.user("ci", kind="service")
    own = ci.post(
        "/api/v1/incidents", json={"environment": "production", "service": "api", "summary": "slow"}
    )
    assert own.status_code == 201, own.text
    for n in range(100):  # opened by someone else, after it: a first page of 100 misses it
        incidents_engine.open_incident(
            api.engine, actor="oncall", service="api", environment="production", summary=f"#{n}"
        )
    answer = post(ci, conformance("incident_resolved"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "incident resolved"
    assert answer.json()["incident"] == own.json()["id"]
    states = {i.id: i.state for i in incidents(api)}
    assert states.pop(own.json()["id"]) == "resolved"
    assert set(states.values()) == {"open"}
